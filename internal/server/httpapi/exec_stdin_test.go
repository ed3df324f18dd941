package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
)

// catLive runs every command as cat would: stdin to stdout. It counts
// the commands that were given a standard input.
type catLive struct {
	Live
	withStdin atomic.Int32
}

func (l *catLive) Exec(ctx context.Context, d api.Deployment, g string, cmd guest.Command) (int, error) {
	if cmd.Stdin == nil {
		return 0, nil
	}
	l.withStdin.Add(1)
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
			if got := live.withStdin.Load() == 1; got != tc.stdin {
				t.Fatalf("command got stdin: %v, want %v", got, tc.stdin)
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

// twoGuests is a deployment of guests a and b.
type twoGuests struct{}

func (twoGuests) Guests(ctx context.Context, d api.Deployment) ([]api.Guest, error) {
	return []api.Guest{{Name: "a"}, {Name: "b"}}, nil
}

// The fan-out exec route gives every guest's command the same "stdin";
// too much is refused before anything runs.
func TestFanoutExecPassesStdin(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		stdout     string
		withStdin  int32
	}{
		{"every guest", `{"command": ["cat"], "stdin": "eA=="}`, http.StatusOK, "x", 2},
		{"named guests", `{"guests": ["b"], "command": ["cat"], "stdin": "eA=="}`, http.StatusOK, "x", 1},
		{"none", `{"command": ["cat"]}`, http.StatusOK, "", 0},
		{"too much", `{"command": ["cat"], "stdin": "` + strings.Repeat("QUFB", api.ExecStdinCap/3+1) + `"}`, http.StatusRequestEntityTooLarge, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := &catLive{}
			h := fanoutExec(Deps{Store: oneDeployment{}, Live: live, Guests: twoGuests{}})
			r := httptest.NewRequest(http.MethodPost, "/api/deployments/lab/exec", strings.NewReader(tc.body))
			r.SetPathValue("name", "lab")
			w := httptest.NewRecorder()
			err := h(w, r)
			if got := status(err); err != nil && got != tc.status || err == nil && tc.status != http.StatusOK {
				t.Fatalf("status %d (%v), want %d", got, err, tc.status)
			}
			if got := live.withStdin.Load(); got != tc.withStdin {
				t.Fatalf("%d commands got stdin, want %d", got, tc.withStdin)
			}
			if err != nil {
				return
			}
			var res api.FanoutExecResult
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || len(res.Results) == 0 {
				t.Fatalf("answer %s (%v)", w.Body, err)
			}
			for _, g := range res.Results {
				if g.Stdout != tc.stdout || g.Error != "" {
					t.Errorf("guest %s: stdout %q, error %q, want stdout %q", g.Guest, g.Stdout, g.Error, tc.stdout)
				}
			}
		})
	}
}
