package libvirt_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// testExecConsole runs commands in a running VM over SSH (output, exit
// status, timeout, quoting) and types into its console.
func testExecConsole(t *testing.T, w *world, st *topology.State, g *topology.Guest) {
	t.Helper()
	dep := w.dep()
	x, err := guest.As[guest.Execer](w.drv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code, err := x.Exec(ctx, dep, g, guest.Command{Argv: []string{"sh", "-c", "echo \"$1 $TESTBEDOS_GUEST\"; echo err >&2; exit 5", "sh", "it's"}, Stdout: &out, Stderr: &errOut})
	if err != nil || code != 5 || out.String() != "it's vm1\n" || errOut.String() != "err\n" {
		t.Errorf("exec: code %d, %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}
	tctx, tcancel := context.WithTimeout(ctx, 2*time.Second)
	start := time.Now()
	_, err = x.Exec(tctx, dep, g, guest.Command{Argv: []string{"sleep", "600"}})
	tcancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 30*time.Second {
		t.Errorf("exec with a deadline: %v after %v", err, time.Since(start))
	}

	testSerialConsole(t, ctx, w, dep, g)
}

// testSerialConsole types into the domain's serial console (the test
// image's shell on ttyS0), opens a second console that takes it over, and
// checks that the console log the driver reads at boot goes on being
// written.
func testSerialConsole(t *testing.T, ctx context.Context, w *world, dep guest.Deployment, g *topology.Guest) {
	t.Helper()
	c, err := guest.As[guest.Consoler](w.drv)
	if err != nil {
		t.Fatal(err)
	}
	term, err := c.Console(ctx, dep, g)
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if err := term.Resize(90, 33); err != nil {
		t.Errorf("resize: %v", err)
	}
	if s, ok := typeAndRead(t, term, "\necho serial-$((6*7))\n", "serial-42"); !ok {
		t.Fatalf("console shows %q", s)
	}

	// A second client takes the console over; the first one's stream ends.
	term2, err := c.Console(ctx, dep, g)
	if err != nil {
		t.Fatalf("second console: %v", err)
	}
	defer term2.Close()
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, term)
		ended <- err
	}()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the first console ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the first console goes on after a second one took over")
	}
	if s, ok := typeAndRead(t, term2, "echo again-$((6*7))\n", "again-42"); !ok {
		t.Fatalf("second console shows %q", s)
	}
	term2.Close()

	// libvirt logs the pty to the console log: the boot's ready line and
	// what was typed are there.
	p := filepath.Join(dep.WorkDir(), "libvirt", g.Name, "console.log")
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err := os.ReadFile(p)
		if err == nil && bytes.Contains(log, []byte("TESTBEDOS-GUEST-READY")) && bytes.Contains(log, []byte("again-42")) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("console log %s (%v) lacks the ready line or the console's output:\n%s", p, err, log)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// typeAndRead writes line to term and reads until want shows, at most a
// minute.
func typeAndRead(t *testing.T, term guest.Terminal, line, want string) (string, bool) {
	t.Helper()
	if _, err := term.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(b.String(), want) {
			n, err := term.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.String()
	}()
	select {
	case s := <-got:
		return s, strings.Contains(s, want)
	case <-time.After(time.Minute):
		term.Close()
		return <-got, false
	}
}
