package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// liveDriver is fakeDriver with exec and a console.
type liveDriver struct {
	*fakeDriver
	mu      sync.Mutex
	resized string
	closed  chan struct{}
}

func (l *liveDriver) Capabilities() guest.Capabilities {
	return guest.Capabilities{Exec: true, Console: true}
}

// Exec echoes stdin to stdout with the argv, writes to stderr, and exits
// with the status argv[1] says.
func (l *liveDriver) Exec(ctx context.Context, dep guest.Deployment, g *topology.Guest, cmd guest.Command) (int, error) {
	if cmd.Argv[0] == "missing" {
		return 0, fmt.Errorf("exec %s: %w", cmd.Argv[0], guest.ErrUnsupported)
	}
	in := []byte("(no stdin)")
	if cmd.Stdin != nil {
		in, _ = io.ReadAll(cmd.Stdin)
	}
	fmt.Fprintf(cmd.Stdout, "%s %s: %s", g.Name, strings.Join(cmd.Argv, " "), in)
	fmt.Fprint(cmd.Stderr, "to stderr")
	var code int
	fmt.Sscan(cmd.Argv[1], &code)
	return code, nil
}

// Console is a terminal that echoes what is typed in upper case.
func (l *liveDriver) Console(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Terminal, error) {
	if g.Name == "nocons" {
		return nil, errors.New("no console for nocons")
	}
	r, w := io.Pipe()
	return &echoTerm{l: l, r: r, w: w}, nil
}

type echoTerm struct {
	l *liveDriver
	r *io.PipeReader
	w *io.PipeWriter
}

func (e *echoTerm) Read(p []byte) (int, error) { return e.r.Read(p) }
func (e *echoTerm) Write(p []byte) (int, error) {
	go e.w.Write(bytes.ToUpper(p))
	return len(p), nil
}
func (e *echoTerm) Resize(cols, rows uint16) error {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	e.l.resized = fmt.Sprintf("%dx%d", cols, rows)
	return nil
}
func (e *echoTerm) Close() error {
	e.w.Close()
	close(e.l.closed)
	return nil
}

// The main runs commands in a client's guest and opens its console through
// the agent API (over TLS, as between hosts): stdin reaches the command,
// stdout, stderr and the exit status come back; the console echoes, takes
// a resize, and closing it ends the session on the client.
func TestExecAndConsoleOnClientHost(t *testing.T) {
	drv := &liveDriver{fakeDriver: &fakeDriver{guests: map[string]bool{}}, closed: make(chan struct{})}
	srv := httptest.NewTLSServer(agent.RequireSecret("sec")(agent.Handler(agent.Options{
		Name: "c1", DataDir: t.TempDir(), Drivers: guest.NewRegistry(drv),
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Secret: "sec", Client: srv.Client(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	x, err := guest.As[guest.Execer](proxy)
	if err != nil {
		t.Fatalf("the proxy of a driver with exec: %v", err)
	}
	ctx := context.Background()
	dep := guest.Deployment{Name: "d1", Files: remote.Files(t.TempDir())}
	g := &topology.Guest{Name: "g1", Kind: topology.KindNetns}
	var out, errOut bytes.Buffer
	code, err := x.Exec(ctx, dep, g, guest.Command{Argv: []string{"cat", "3"}, Stdin: strings.NewReader("hello"), Stdout: &out, Stderr: &errOut})
	if err != nil || code != 3 || out.String() != "g1 cat 3: hello" || errOut.String() != "to stderr" {
		t.Errorf("exec: %d, %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}
	out.Reset()
	if code, err := x.Exec(ctx, dep, g, guest.Command{Argv: []string{"true", "0"}, Stdout: &out}); err != nil || code != 0 || out.String() != "g1 true 0: (no stdin)" {
		t.Errorf("exec without stdin: %d, %v, %q", code, err, out.String())
	}
	if _, err := x.Exec(ctx, dep, g, guest.Command{Argv: []string{"missing"}}); !errors.Is(err, guest.ErrUnsupported) {
		t.Errorf("a failed exec: %v", err)
	}

	c, err := guest.As[guest.Consoler](proxy)
	if err != nil {
		t.Fatalf("the proxy of a driver with a console: %v", err)
	}
	if _, err := c.Console(ctx, dep, &topology.Guest{Name: "nocons", Kind: topology.KindNetns}); err == nil || !strings.Contains(err.Error(), "no console for nocons") {
		t.Errorf("a console that does not open: %v", err)
	}
	term, err := c.Console(ctx, dep, g)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // longer than the dial's timeout: the session outlives it
	if err := term.Resize(120, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := term.Write([]byte("echo hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(term, buf); err != nil || string(buf) != "ECHO HI" {
		t.Errorf("console read %q, %v", buf, err)
	}
	drv.mu.Lock()
	resized := drv.resized
	drv.mu.Unlock()
	if resized != "120x40" {
		t.Errorf("resized to %q", resized)
	}
	term.Close()
	select {
	case <-drv.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the console did not end the session on the client")
	}
}
