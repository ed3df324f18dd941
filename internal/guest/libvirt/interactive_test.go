package libvirt_test

import (
	"bytes"
	"context"
	"errors"
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
	dep := guest.LocalDeployment(st)
	x, err := guest.ExecerOf(w.drv)
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

	c, err := guest.ConsolerOf(w.drv)
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
	// The test image's SSH server has no ptys: a shell on pipes.
	if _, err := term.Write([]byte("echo console-$((6*7)) done\n")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(b.String(), "console-42 done") {
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
		if !strings.Contains(s, "console-42 done") {
			t.Errorf("console shows %q", s)
		}
	case <-time.After(time.Minute):
		t.Error("console: no answer within a minute")
	}
}
