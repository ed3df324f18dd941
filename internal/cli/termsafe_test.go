package cli

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server"
)

func TestSanitizeGuest(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain text", "hello, world", "hello, world"},
		{"newline and tab", "a\tb\nc", "a\tb\nc"},
		{"utf-8", "café ©  ✓", "café ©  ✓"},
		{"SGR colours stay", "\x1b[31mred\x1b[0m \x1b[1;38;5;208mbold\x1b[m", "\x1b[31mred\x1b[0m \x1b[1;38;5;208mbold\x1b[m"},
		{"OSC title", "\x1b]0;pwned\x07rest", "^[]0;pwned^Grest"},
		{"OSC 52 clipboard", "\x1b]52;c;ZXZpbA==\x1b\\", "^[]52;c;ZXZpbA==^[\\"},
		{"DCS", "\x1bPq#0;2;0;0;0\x1b\\", "^[Pq#0;2;0;0;0^[\\"},
		{"cursor movement", "ok\x1b[2A\x1b[2Khidden", "ok^[[2A^[[2Khidden"},
		{"clear screen", "\x1b[2J\x1b[H", "^[[2J^[[H"},
		{"device status query", "\x1b[6n", "^[[6n"},
		{"private mode", "\x1b[?1049h", "^[[?1049h"},
		{"lone ESC at the end", "end\x1b", "end^["},
		{"ESC [ at the end", "end\x1b[3", "end^[[3"},
		{"two ESCs", "\x1b\x1b[31m", "^[\x1b[31m"},
		{"CR LF is a line end", "a\r\nb\r\n", "a\nb\n"},
		{"lone CR", "visible\rhidden", "visible^Mhidden"},
		{"CR at the end", "a\r", "a^M"},
		{"bell backspace DEL", "a\x07b\x08c\x7f", "a^Gb^Hc^?"},
		{"NUL", "a\x00b", "a^@b"},
		{"C1 CSI", "a\u009b2Jb", "a<U+009B>2Jb"},
		{"C1 OSC", "\u009d0;t\u009c", "<U+009D>0;t<U+009C>"},
		{"overlong SGR", "\x1b[" + strings.Repeat("1;", 40) + "m", "^[[" + strings.Repeat("1;", 40) + "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitizeGuest(tt.in); got != tt.want {
				t.Fatalf("sanitizeGuest(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Split at every point: the writer keeps state between writes.
			for i := range len(tt.in) {
				var out strings.Builder
				g := &guestWriter{w: &out}
				io.WriteString(g, tt.in[:i])
				io.WriteString(g, tt.in[i:])
				g.Close()
				if out.String() != tt.want {
					t.Fatalf("split at %d: %q, want %q", i, out.String(), tt.want)
				}
			}
		})
	}
}

// hostile is what a guest prints: a title change, a clipboard write, a
// cursor move and colour.
const hostile = "\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[1A\x1b[31mred\x1b[0m"

// hostileExecutor logs hostile text and fails with it, as a setup script
// that printed it would.
type hostileExecutor struct{}

func (hostileExecutor) Check(context.Context, api.Deployment, api.DeploymentState, api.Command) error {
	return nil
}

func (hostileExecutor) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	log.Printf("web: %s", hostile)
	return prev, errors.New("setup script: " + hostile)
}

// TestGuestTextOnATerminal: up and logs show a guest's escape sequences as
// text on a terminal (colours kept), and pass them unchanged to a pipe.
func TestGuestTextOnATerminal(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Server{
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", DB: "file",
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Executor: hostileExecutor{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
		ts.Close()
	})
	c, _ := client.New(ts.URL)
	project := filepath.Join(dir, "project")
	os.MkdirAll(project, 0o755)
	os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	if _, err := c.CreateDeployment(context.Background(), "lab", project); err != nil {
		t.Fatal(err)
	}
	const shown = "^[]0;pwned^G^[]52;c;ZXZpbA==^G^[[1A\x1b[31mred\x1b[0m"
	for _, tty := range []bool{true, false} {
		for _, verb := range []string{"up", "logs"} {
			var stdout, stderr strings.Builder
			a := &app{stdout: &stdout, stderr: &stderr, interrupts: make(chan os.Signal),
				lookupEnv: func(string) (string, bool) { return "", false },
				terminal:  func(io.Writer) bool { return tty }}
			a.execute(context.Background(), []string{"--server-connection", ts.URL, "-p", "lab", verb})
			out := stdout.String() + stderr.String()
			want, never := shown, hostile
			if !tty {
				want, never = hostile, "^["
			}
			if !strings.Contains(stdout.String(), "web: "+want) {
				t.Errorf("tty %v, %s: stdout %q lacks %q", tty, verb, stdout.String(), want)
			}
			if verb == "up" && !strings.Contains(stderr.String(), want) {
				t.Errorf("tty %v, %s: stderr %q lacks %q", tty, verb, stderr.String(), want)
			}
			if strings.Contains(out, never) {
				t.Errorf("tty %v, %s: output has %q:\n%q", tty, verb, never, out)
			}
		}
	}
}
