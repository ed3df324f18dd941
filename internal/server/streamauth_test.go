package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestStreamsEndWithTheirSession: an events websocket opened with a GUI
// session is closed with 1008 (policy violation) and a reason soon after
// the session is logged out; one opened with the API token goes on.
func TestStreamsEndWithTheirSession(t *testing.T) {
	e := newAuthEnv(t)
	cookie := e.login(t)
	session := SessionCookie + "=" + cookie.Value
	ws := "ws" + strings.TrimPrefix(e.base, "http") + "/api/events"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bySession, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {session}, "Origin": {e.base}}})
	if err != nil {
		t.Fatal(err)
	}
	defer bySession.CloseNow()
	byToken, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + e.token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer byToken.CloseNow()

	if resp := e.do(t, plain, "POST", "/logout", "", map[string]string{"Cookie": session, "Origin": e.base}); resp.StatusCode != 303 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	_, _, err = bySession.Read(rctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason == "" {
		t.Fatalf("events stream of a logged-out session: %v, want a close frame 1008 with a reason", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the stream ended %v after logout", took)
	}
	// The token's stream is still open: a ping is answered.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	go byToken.Read(pctx) // reads answer the ping
	if err := byToken.Ping(pctx); err != nil {
		t.Errorf("the token's stream ended with the session: %v", err)
	}
}
