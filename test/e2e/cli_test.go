package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// kvmCompose runs the CLI in dir against s and returns its exit status and
// output.
func kvmCompose(t *testing.T, s *server, dir string, args ...string) (int, string) {
	t.Helper()
	c := exec.Command(bins.cli, args...)
	c.Dir = dir
	c.Env = append(s.env, "TESTBEDOS_SOCKET="+s.socket)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func TestCLIQuickstart(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho web says hello\n"})
	name := uniqueName("cli")
	t.Cleanup(func() { nettest.RemoveAll(netnsPrefix(name)) })
	run := func(want int, args ...string) string {
		t.Helper()
		code, out := kvmCompose(t, s, dir, append([]string{"--project-name", name}, args...)...)
		if code != want {
			t.Fatalf("kvm-compose %v: exit %d, want %d\n%s", args, code, want, out)
		}
		return out
	}
	run(0, "deployment", "create")
	run(1, "deployment", "create") // exists: 409
	if out := run(0, "generate-artefacts"); !strings.Contains(out, "generate-artefacts succeeded") {
		t.Fatalf("generate-artefacts output:\n%s", out)
	}
	st := state(t, s, name)
	t.Cleanup(func() { nettest.RemoveAll(st.Prefix) })
	out := run(0, "up")
	for _, want := range []string{"==> up [3/6] network", "[web] web says hello", "up succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %q:\n%s", want, out)
		}
	}
	// echo x | kvm-compose exec web -- cat
	ex := exec.Command(bins.cli, "--project-name", name, "exec", "web", "--", "cat")
	ex.Dir, ex.Env, ex.Stdin = dir, append(s.env, "TESTBEDOS_SOCKET="+s.socket), strings.NewReader("x\n")
	if out, err := ex.CombinedOutput(); err != nil || string(out) != "x\n" {
		t.Errorf("exec with standard input: %v\n%s", err, out)
	}
	if out := run(0, "actions"); strings.Index(out, " up ") > strings.Index(out, " generate-artefacts ") || !strings.Contains(out, "1-2 of 2") {
		t.Errorf("actions, newest first:\n%s", out)
	}
	if out := run(0, "deployment", "list"); !strings.Contains(out, name) || !strings.Contains(out, " up ") {
		t.Errorf("list:\n%s", out)
	}
	if out := run(0, "logs"); !strings.Contains(out, "up succeeded") {
		t.Errorf("logs:\n%s", out)
	}
	if out := run(1, "deployment", "destroy"); !strings.Contains(out, "--force") || strings.Contains(out, "?force") { // up: 409
		t.Errorf("destroy of an up deployment should suggest --force:\n%s", out)
	}
	run(0, "down")
	assertNothingLeft(t, st)
	if out := run(0, "logs", "--follow"); !strings.Contains(out, "down succeeded") {
		t.Errorf("logs --follow of a finished action:\n%s", out)
	}
	run(0, "deployment", "destroy")
	if code, out := kvmCompose(t, s, dir, "--project-name", name, "up"); code != 1 || !strings.Contains(out, "deployment create") {
		t.Errorf("up of a missing deployment: exit %d, want 1 with a hint:\n%s", code, out)
	}
}

func TestCLIExitStatusAndCtrlC(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "ctrlc", threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho sleeping\nsleep 60\n"})
	name, dir, st := lab.name, lab.dir, lab.st

	c := exec.Command(bins.cli, "--project-name", name, "up")
	c.Dir = dir
	c.Env = append(s.env, "TESTBEDOS_SOCKET="+s.socket)
	stdout, _ := c.StdoutPipe()
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		<-ctx.Done()
		c.Process.Kill()
	}()
	sc := bufio.NewScanner(stdout)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "[web] sleeping") {
			c.Process.Signal(syscall.SIGINT)
			break
		}
	}
	rest, _ := io.ReadAll(stdout)
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != api.ErrorCodeCancelled {
		t.Fatalf("kvm-compose up after Ctrl-C: %v, want exit %d\n%s\n%s\n%s", err, api.ErrorCodeCancelled, strings.Join(seen, "\n"), rest, stderr.String())
	}
	if !strings.Contains(stderr.String(), "cancelling up") || !strings.Contains(string(rest), "reverted") {
		t.Errorf("Ctrl-C did not show the cancel and the clean-up:\n%s\n%s", rest, stderr.String())
	}
	// A cancel is no failure: said once, without each guest's "context canceled".
	if want := "up cancelled: deployment " + name + " is cancelled(up)"; strings.Count(stderr.String(), want) != 1 ||
		strings.Contains(stderr.String(), "context canceled") || strings.Contains(stderr.String(), "up failed") {
		t.Errorf("Ctrl-C's message is not %q once, alone:\n%s", want, stderr.String())
	}
	assertNothingLeft(t, st)
	d, _ := s.c.Deployment(context.Background(), name)
	if !d.State.Is(api.StateFailed) {
		t.Fatalf("state after cancel = %v", d.State)
	}
	// The API keeps the original's {"failed": "up"}; the CLI says cancelled.
	if code, out := kvmCompose(t, s, dir, "deployment", "list"); code != 0 || !strings.Contains(out, "cancelled(up)") {
		t.Errorf("deployment list after a cancel: exit %d\n%s", code, out)
	}
}

// up of a deployment without artefacts generates them first and says so;
// up in a folder without kvm-compose.yaml says that.
func TestCLIUpGeneratesFirst(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho hi\n"})
	name := deployment(t, s, "genfirst", dir)
	code, out := kvmCompose(t, s, dir, "--project-name", name, "up")
	if code != 0 || !strings.Contains(out, "has no artefacts yet: generating them first") || !strings.Contains(out, "up succeeded") {
		t.Fatalf("up before generate-artefacts: exit %d\n%s", code, out)
	}
	st := state(t, s, name)
	t.Cleanup(func() { nettest.RemoveAll(st.Prefix) })
	if code, out := kvmCompose(t, s, dir, "--project-name", name, "down"); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	assertNothingLeft(t, st)
	if code, out := kvmCompose(t, s, t.TempDir(), "up"); code != 1 || !strings.Contains(out, "no kvm-compose.yaml in") {
		t.Errorf("up in a folder without kvm-compose.yaml: exit %d\n%s", code, out)
	}
}
