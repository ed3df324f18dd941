package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/creack/pty"

	"github.com/testbedos/testbedos/internal/api"
)

// echo x | kvm-compose exec web -- cat: the command gets x; -n and an empty
// input send none; too much is refused before anything runs.
func TestExecPassesStandardInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		flags []string
		want  string
		fails bool
	}{
		{"piped", "x\n", nil, "x\n", false},
		{"no-stdin", "x\n", []string{"-n"}, "", false},
		{"empty", "", nil, "", false},
		{"too much", strings.Repeat("a", api.ExecStdinCap+1), nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, got := execServer(t)
			var out bytes.Buffer
			a := &app{stdin: strings.NewReader(tc.stdin), stdout: &out, stderr: &out,
				lookupEnv: func(string) (string, bool) { return "", false }}
			args := append([]string{"--server-connection", url, "-p", "lab", "exec", "web"}, tc.flags...)
			code := a.execute(context.Background(), append(args, "--", "cat"))
			reqs := got()
			if tc.fails {
				if code == 0 || len(reqs) != 0 || !strings.Contains(out.String(), "standard input is over") {
					t.Fatalf("exit %d, %d requests:\n%s", code, len(reqs), out.String())
				}
				return
			}
			if code != 0 || len(reqs) != 1 {
				t.Fatalf("exit %d, %d requests:\n%s", code, len(reqs), out.String())
			}
			if string(reqs[0].Stdin) != tc.want {
				t.Fatalf("sent stdin %q, want %q", reqs[0].Stdin, tc.want)
			}
		})
	}
}

// A terminal on standard input is not read: the command would wait for
// typed input until its timeout.
func TestExecSendsNoStdinFromATerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	a := &app{stdin: tty}
	if data, err := a.execStdin(); err != nil || data != nil {
		t.Fatalf("read %q (%v) from a terminal", data, err)
	}
}

// echo x | kvm-compose exec --all -- cat sends x once for every guest; -n
// sends none.
func TestFanoutExecPassesStandardInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"piped", []string{"--all"}, "x\n"},
		{"named guests", []string{"--guests", "a,b"}, "x\n"},
		{"no-stdin", []string{"--all", "-n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []api.FanoutExecRequest
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req api.FanoutExecRequest
				if r.Method != http.MethodPost || r.URL.Path != "/api/deployments/lab/exec" {
					w.Write([]byte("{}"))
					return
				}
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
					t.Errorf("exec body: %v", err)
				}
				mu.Lock()
				got = append(got, req)
				mu.Unlock()
				json.NewEncoder(w).Encode(api.FanoutExecResult{Results: []api.GuestExecResult{{Guest: "a"}, {Guest: "b"}}})
			}))
			t.Cleanup(ts.Close)
			var out bytes.Buffer
			a := &app{stdin: strings.NewReader("x\n"), stdout: &out, stderr: &out,
				lookupEnv: func(string) (string, bool) { return "", false }}
			args := append([]string{"--server-connection", ts.URL, "-p", "lab", "exec"}, tc.flags...)
			if code := a.execute(context.Background(), append(args, "--", "cat")); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || string(got[0].Stdin) != tc.want {
				t.Fatalf("requests %+v, want one with stdin %q", got, tc.want)
			}
		})
	}
}
