package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// execServer answers every probe and records the exec requests.
func execServer(t *testing.T) (string, func() []api.ExecRequest) {
	t.Helper()
	var mu sync.Mutex
	var got []api.ExecRequest
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/guests/web/exec") {
			var req api.ExecRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				t.Errorf("exec body: %v", err)
			}
			mu.Lock()
			got = append(got, req)
			mu.Unlock()
			json.NewEncoder(w).Encode(api.ExecResult{Stdout: "ok\n"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	}))
	t.Cleanup(ts.Close)
	return ts.URL, func() []api.ExecRequest { mu.Lock(); defer mu.Unlock(); return append([]api.ExecRequest(nil), got...) }
}

// TestExecFlagsBeforeDash: everything before "--" is kvm-compose's, flags
// after GUEST too; only what follows "--" is the command.
func TestExecFlagsBeforeDash(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		command []string
		timeout int
	}{
		{"timeout after the guest", []string{"exec", "web", "--timeout", "5s", "--", "ip", "-br", "a"}, []string{"ip", "-br", "a"}, 5},
		{"timeout before the guest", []string{"exec", "--timeout=7s", "web", "--", "sh", "-c", "echo --timeout"}, []string{"sh", "-c", "echo --timeout"}, 7},
		{"flags of the command after --", []string{"exec", "web", "--", "ls", "--timeout", "3s"}, []string{"ls", "--timeout", "3s"}, api.DefaultExecTimeoutS},
		{"no dash and no flags", []string{"exec", "web", "hostname"}, []string{"hostname"}, api.DefaultExecTimeoutS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, got := execServer(t)
			code, out := run(t, url, nil, append([]string{"--server-connection", url, "-p", "lab"}, tc.args...)...)
			reqs := got()
			if code != 0 || len(reqs) != 1 {
				t.Fatalf("exit %d, %d requests:\n%s", code, len(reqs), out)
			}
			if strings.Join(reqs[0].Command, "\x00") != strings.Join(tc.command, "\x00") || reqs[0].TimeoutS != tc.timeout {
				t.Fatalf("sent %q with timeout %d, want %q with %d", reqs[0].Command, reqs[0].TimeoutS, tc.command, tc.timeout)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"two words before --", []string{"exec", "web", "extra", "--", "ls"}, "one guest before --"},
		{"nothing after --", []string{"exec", "web", "--"}, "no command given"},
		{"a command flag without --", []string{"exec", "web", "ls", "-l"}, "put the command after --"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, got := execServer(t)
			code, out := run(t, url, nil, append([]string{"--server-connection", url, "-p", "lab"}, tc.args...)...)
			if code == 0 || len(got()) != 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, %d requests, want an error saying %q:\n%s", code, len(got()), tc.want, out)
			}
		})
	}
}
