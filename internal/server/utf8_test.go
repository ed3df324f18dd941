package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/api"
)

// TestInvalidUTF8LogLinesStayValidText: a setup script's output that is
// not UTF-8 reaches a log follower as valid UTF-8 text frames (invalid
// bytes replaced by U+FFFD), and the follower still gets the outcome
// close frame: a browser fails a connection on invalid text.
func TestInvalidUTF8LogLinesStayValidText(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.create(t, "lab")
	e.exec.line = "setup: got \xff\xfe from the guest"
	id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.ts.URL, "http")+"/api/logs/"+id+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	e.exec.open()
	var replaced bool
	for {
		typ, data, err := conn.Read(ctx)
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.StatusNormalClosure || !strings.Contains(ce.Reason, `"error_code"`) {
				t.Fatalf("close frame %d %q, want the outcome", ce.Code, ce.Reason)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.MessageText || !utf8.Valid(data) {
			t.Fatalf("frame %v %q: want valid UTF-8 text", typ, data)
		}
		if strings.Contains(string(data), "got \uFFFD") {
			replaced = true
		}
	}
	if !replaced {
		t.Fatal("the script's line did not arrive with its invalid bytes replaced")
	}
}
