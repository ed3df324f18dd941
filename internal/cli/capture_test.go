package cli

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// capture refuses to write pcap into a terminal, before it asks the
// server anything, and says what to do instead; into a file it goes on.
func TestCaptureRefusesATerminal(t *testing.T) {
	tcp := freeTCP(t)
	for _, tc := range []struct {
		name    string
		args    []string
		refused bool
	}{
		{"stdout", nil, true},
		{"dash", []string{"-w", "-"}, true},
		{"file", []string{"-w", filepath.Join(t.TempDir(), "x.pcap")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &out,
				lookupEnv: func(string) (string, bool) { return "", false },
				terminal:  func(io.Writer) bool { return true }}
			args := append([]string{"--server-connection", tcp, "-p", "lab", "capture", "web", "eth0"}, tc.args...)
			code := a.execute(context.Background(), args)
			refused := strings.Contains(out.String(), "standard output is a terminal: give -w FILE, or pipe it: kvm-compose capture web eth0 | wireshark -k -i -")
			if code == 0 || refused != tc.refused {
				t.Fatalf("exit %d, refused %v, want %v:\n%s", code, refused, tc.refused, out.String())
			}
		})
	}
}
