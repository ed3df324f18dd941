package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
)

// stagedExecutor logs stage lines as the engine does; with hold, up stops
// after its second stage until cancelled.
type stagedExecutor struct {
	hold    bool
	started chan struct{}
	mu      sync.Mutex
	ran     []string
}

func (x *stagedExecutor) Check(context.Context, api.Deployment, api.DeploymentState, api.Command) error {
	return nil
}

func (x *stagedExecutor) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	x.mu.Lock()
	x.ran = append(x.ran, string(cmd.Name))
	x.mu.Unlock()
	if cmd.Name != api.CmdUp {
		return api.StateIsDown, nil
	}
	log.Printf("==> up [1/3] init: 1 guest")
	log.Printf("guest web: hello")
	log.Printf("==> up [2/3] guests: 1 guest")
	if x.hold {
		x.started <- struct{}{}
		<-ctx.Done()
		return prev, context.Cause(ctx)
	}
	log.Printf("==> up [3/3] end: deployment %s is up", d.Name)
	return api.StateIsUp, nil
}

func (x *stagedExecutor) commands() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return strings.Join(x.ran, ",")
}

// runTTY runs kvm-compose as on a terminal: stdout and stderr are the
// same screen, and progress lines are drawn in place.
func (e *cliEnv) runTTY(args ...string) (interrupt func(), out func() string, wait func() (int, string)) {
	ints := make(chan os.Signal, 2)
	var screen syncBuffer
	a := &app{stdin: strings.NewReader(""), stdout: &screen, stderr: &screen, interrupts: ints,
		lookupEnv: func(string) (string, bool) { return "", false }, terminal: func(io.Writer) bool { return true }}
	done := make(chan int, 1)
	go func() {
		done <- a.execute(context.Background(), append([]string{"--server-connection", e.url}, args...))
	}()
	return func() { ints <- os.Interrupt }, screen.String, func() (int, string) {
		select {
		case code := <-done:
			return code, screen.String()
		case <-time.After(30 * time.Second):
			return -1, screen.String() + "\n(kvm-compose did not end in 30 s)"
		}
	}
}

// shown is what a terminal shows of out: each line as it is left after
// the last clear of it.
func shown(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.LastIndex(l, clearLine); i >= 0 {
			l = l[i+len(clearLine):]
		}
		lines = append(lines, l)
	}
	return lines
}

func lineWith(lines []string, s string) int {
	for i, l := range lines {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

// up before generate-artefacts generates first and says so; on a terminal
// "==> up succeeded" comes under "[3/3] end"; actions lists it; every
// listing prints JSON with --format json.
func TestUpOnATerminal(t *testing.T) {
	x := &stagedExecutor{}
	e := newCLIEnvWith(t, x)
	_, _, wait := e.runTTY("-p", "lab", "up")
	code, out := wait()
	if code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	if got := x.commands(); got != "generate-artefacts,up" {
		t.Errorf("ran %s, want generate-artefacts first", got)
	}
	if !strings.Contains(out, "kvm-compose: deployment lab has no artefacts yet: generating them first\n") {
		t.Errorf("up does not say it generates first:\n%s", out)
	}
	lines := shown(out)
	end, ok := lineWith(lines, "[3/3] end"), lineWith(lines, "==> up succeeded")
	if end < 0 || ok < 0 || end > ok {
		t.Errorf("[3/3] end on line %d, ==> up succeeded on line %d; want the end stage first:\n%s", end, ok, strings.Join(lines, "\n"))
	}

	_, waitDown := e.run("-p", "lab", "down")
	if code, _, stderr := waitDown(); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, stderr)
	}
	t.Run("actions", func(t *testing.T) {
		_, wait := e.run("-p", "lab", "actions", "--limit", "1")
		code, stdout, stderr := wait()
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stdout, " down ") || strings.Contains(stdout, " up ") ||
			!strings.Contains(stdout, "succeeded") || !strings.Contains(stdout, "1-1 of 2; older: kvm-compose actions lab --limit 1 --page 2") {
			t.Errorf("the first page is not the newest action, down:\n%s", stdout)
		}
		_, wait = e.run("-p", "lab", "actions", "--limit", "1", "--page", "2")
		if code, stdout, stderr := wait(); code != 0 || !strings.Contains(stdout, " up ") || !strings.Contains(stdout, "2-2 of 2\n") {
			t.Errorf("page 2: exit %d, want up:\n%s%s", code, stdout, stderr)
		}
	})
	t.Run("format json", func(t *testing.T) {
		for _, args := range [][]string{
			{"deployment", "list"}, {"deployment", "info", "lab"}, {"cluster", "status"}, {"-p", "lab", "actions"}, {"-p", "lab", "logs"},
		} {
			_, wait := e.run(append(args, "--format", "json")...)
			code, stdout, stderr := wait()
			var v any
			if code != 0 || json.Unmarshal([]byte(stdout), &v) != nil || v == nil {
				t.Errorf("%s --format json: exit %d, not JSON:\n%s%s", strings.Join(args, " "), code, stdout, stderr)
			}
		}
		var list api.DeploymentList
		_, wait := e.run("deployment", "list", "--format", "json")
		if _, stdout, _ := wait(); json.Unmarshal([]byte(stdout), &list) != nil || list.Deployments["lab"].Name != "lab" {
			t.Errorf("deployment list JSON: %+v", list)
		}
		var idx api.LogIndex
		_, wait = e.run("-p", "lab", "logs", "--format", "json")
		if _, stdout, _ := wait(); json.Unmarshal([]byte(stdout), &idx) != nil || len(idx) != 2 {
			t.Errorf("logs index JSON: %+v", idx)
		}
		var page api.ActionPage
		_, wait = e.run("-p", "lab", "actions", "--format", "json")
		if _, stdout, _ := wait(); json.Unmarshal([]byte(stdout), &page) != nil || page.Total != 2 || page.Actions[0].Command.Name != api.CmdDown {
			t.Errorf("actions JSON: %+v", page)
		}
		_, wait = e.run("deployment", "list", "--format", "yaml")
		if code, _, stderr := wait(); code == 0 || !strings.Contains(stderr, "give text or json") {
			t.Errorf("--format yaml: exit %d\n%s", code, stderr)
		}
	})
}

// Ctrl-C mid-up: the cancel notice is a line of its own, not glued to the
// progress line; the exit status is 2 and the state reads cancelled.
func TestCtrlCMidUpOnATerminal(t *testing.T) {
	x := &stagedExecutor{hold: true, started: make(chan struct{}, 1)}
	e := newCLIEnvWith(t, x)
	interrupt, out, wait := e.runTTY("-p", "lab", "up")
	select {
	case <-x.started:
	case <-time.After(30 * time.Second):
		t.Fatal("up did not start")
	}
	for i := 0; !strings.Contains(out(), "[2/3] guests") && i < 3000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	interrupt()
	code, screen := wait()
	if code != api.ErrorCodeCancelled {
		t.Fatalf("exit %d, want %d\n%s", code, api.ErrorCodeCancelled, screen)
	}
	lines := shown(screen)
	i := lineWith(lines, "cancelling up")
	if i < 0 || !strings.HasPrefix(lines[i], "kvm-compose: cancelling up") {
		t.Errorf("the cancel notice is not on a line of its own:\n%q", lines)
	}
	if !strings.Contains(screen, "kvm-compose: up cancelled: deployment lab is cancelled(up)\n") {
		t.Errorf("the outcome does not say cancelled:\n%s", screen)
	}
	for _, args := range [][]string{{"deployment", "list"}, {"deployment", "info", "lab"}} {
		_, wait := e.run(args...)
		if code, stdout, stderr := wait(); code != 0 || !strings.Contains(stdout, "cancelled(up)") || strings.Contains(stdout, "failed(up)") {
			t.Errorf("%s: exit %d, state not cancelled(up):\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// up in a folder without kvm-compose.yaml says so, not that the deployment
// was not found; with the file but no deployment, it says to create it.
func TestUpWithoutYAMLSaysSo(t *testing.T) {
	e := newCLIEnvWith(t, &stagedExecutor{})
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o755)
	_, wait := e.run("-i", filepath.Join(empty, "kvm-compose.yaml"), "up")
	code, _, stderr := wait()
	if code == 0 || !strings.Contains(stderr, "no kvm-compose.yaml in "+empty) || strings.Contains(stderr, "deployment create") {
		t.Errorf("exit %d, want an error naming the missing kvm-compose.yaml:\n%s", code, stderr)
	}
	other := filepath.Join(t.TempDir(), "other")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	_, wait = e.run("-i", filepath.Join(other, "kvm-compose.yaml"), "up")
	if code, _, stderr := wait(); code == 0 || !strings.Contains(stderr, "kvm-compose deployment create other") {
		t.Errorf("exit %d, want the create hint:\n%s", code, stderr)
	}
}
