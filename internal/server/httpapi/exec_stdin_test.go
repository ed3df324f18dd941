package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
)

// catLive runs every command as cat would: stdin to stdout.
type catLive struct {
	Live
	gotStdin bool
}

func (l *catLive) Exec(ctx context.Context, d api.Deployment, g string, cmd guest.Command) (int, error) {
	if cmd.Stdin == nil {
		return 0, nil
	}
	l.gotStdin = true
	_, err := io.Copy(cmd.Stdout, cmd.Stdin)
	return 0, err
}

// The exec route hands "stdin" (base64) to the guest's command; without it
// the command gets no input at all; too much is refused before it runs.
func TestExecPassesStdin(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		stdout     string
		stdin      bool
	}{
		{"stdin", `{"command": ["cat"], "stdin": "eA=="}`, http.StatusOK, "x", true},
		{"none", `{"command": ["cat"]}`, http.StatusOK, "", false},
		{"too much", `{"command": ["cat"], "stdin": "` + strings.Repeat("QUFB", api.ExecStdinCap/3+1) + `"}`, http.StatusRequestEntityTooLarge, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := &catLive{}
			h := execGuest(Deps{Store: oneDeployment{}, Live: live})
			r := httptest.NewRequest(http.MethodPost, "/api/deployments/lab/guests/web/exec", strings.NewReader(tc.body))
			r.SetPathValue("name", "lab")
			r.SetPathValue("guest", "web")
			w := httptest.NewRecorder()
			err := h(w, r)
			if got := status(err); err != nil && got != tc.status || err == nil && tc.status != http.StatusOK {
				t.Fatalf("status %d (%v), want %d", got, err, tc.status)
			}
			if live.gotStdin != tc.stdin {
				t.Fatalf("command got stdin: %v, want %v", live.gotStdin, tc.stdin)
			}
			if err != nil {
				return
			}
			var res api.ExecResult
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Stdout != tc.stdout {
				t.Fatalf("stdout %q (%v), want %q", res.Stdout, err, tc.stdout)
			}
		})
	}
}
