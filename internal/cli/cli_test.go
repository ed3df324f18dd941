package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actions"
	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server"
)

// holdingExecutor is a fake engine: up holds until cancelled, and then, as
// the engine did, every guest reports the cancel.
type holdingExecutor struct{ started chan string }

func (h *holdingExecutor) Check(context.Context, api.Deployment, api.DeploymentState, api.Command) error {
	return nil
}

func (h *holdingExecutor) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	if cmd.Name != api.CmdUp {
		return api.StateIsDown, nil
	}
	log.Printf("up: starting 50 guests")
	h.started <- d.Name
	<-ctx.Done()
	var errs []error
	for i := range 50 {
		errs = append(errs, fmt.Errorf("guest g%d: up g%d: %w", i, i, ctx.Err()))
	}
	return prev, errors.Join(errs...)
}

// syncBuffer is written by the command while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type cliEnv struct {
	srv     *server.Server
	url     string
	c       *client.Client
	exec    *holdingExecutor
	project string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	exec := &holdingExecutor{started: make(chan string, 1)}
	e := newCLIEnvWith(t, exec)
	e.exec = exec
	return e
}

// newCLIEnvWith is a server whose actions run on exec, with deployment
// "lab" created for its project folder.
func newCLIEnvWith(t *testing.T, exec actions.Executor) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Server{
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", DB: "file",
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	srv, err := server.New(context.Background(), server.Options{Config: cfg, Executor: exec})
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
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	project := filepath.Join(dir, "project")
	os.MkdirAll(project, 0o755)
	os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	if _, err := c.CreateDeployment(context.Background(), "lab", project); err != nil {
		t.Fatal(err)
	}
	return &cliEnv{srv: srv, url: ts.URL, c: c, project: project}
}

// run starts kvm-compose args in the background; wait returns its exit
// status, stdout and stderr.
func (e *cliEnv) run(args ...string) (interrupt func(), wait func() (int, string, string)) {
	interrupt, _, wait = e.start(args...)
	return interrupt, wait
}

// start is run that also shows stdout while the command runs.
func (e *cliEnv) start(args ...string) (interrupt func(), out func() string, wait func() (int, string, string)) {
	ints := make(chan os.Signal, 2)
	var stdout, stderr syncBuffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, interrupts: ints, lookupEnv: func(string) (string, bool) { return "", false }}
	done := make(chan int, 1)
	go func() {
		done <- a.execute(context.Background(), append([]string{"--server-connection", e.url}, args...))
	}()
	return func() { ints <- os.Interrupt }, stdout.String, func() (int, string, string) {
		select {
		case code := <-done:
			return code, stdout.String(), stderr.String()
		case <-time.After(30 * time.Second):
			return -1, stdout.String(), stderr.String() + "\n(kvm-compose did not end in 30 s)"
		}
	}
}

// waitStreams waits until the server counts n live streams (its metrics).
func (e *cliEnv) waitStreams(t *testing.T, n int) {
	t.Helper()
	want := fmt.Sprintf("testbedos_log_streams %d\n", n)
	for range 2000 {
		resp, err := http.Get(e.url + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), want) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the server never counted %d streams", n)
}

func (e *cliEnv) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-e.exec.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the action did not start")
	}
}

// Defect 10: Ctrl-C and a server stop are not failures, and say so once.
func TestCancelAndInterruptReadAsSuch(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, e *cliEnv, interrupt func())
		code int
		want string
	}{
		{"ctrl-c", func(t *testing.T, e *cliEnv, interrupt func()) { interrupt() },
			api.ErrorCodeCancelled, "kvm-compose: up cancelled: deployment lab is cancelled(up)\n"},
		{"server stops", func(t *testing.T, e *cliEnv, interrupt func()) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.srv.Close(ctx); err != nil {
				t.Error(err)
			}
		}, api.ErrorCodeInterrupted, "kvm-compose: up interrupted: the server stopped while it ran; deployment lab is failed(up)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCLIEnv(t)
			interrupt, wait := e.run("-p", "lab", "up")
			e.waitStarted(t)
			tc.stop(t, e, interrupt)
			code, stdout, stderr := wait()
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, stdout, stderr)
			}
			if strings.Count(stderr, tc.want) != 1 {
				t.Errorf("stderr does not say %q once:\n%s", tc.want, stderr)
			}
			for _, noise := range []string{"context canceled", "failed (error code", "guest g"} {
				if strings.Contains(stderr, noise) {
					t.Errorf("stderr has %q:\n%s", noise, stderr)
				}
			}
		})
	}
}

func TestRecordedErrorOfACancelIsOneLine(t *testing.T) {
	e := newCLIEnv(t)
	interrupt, wait := e.run("-p", "lab", "up")
	e.waitStarted(t)
	interrupt()
	if code, _, stderr := wait(); code != api.ErrorCodeCancelled {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	d, err := e.c.Deployment(context.Background(), "lab")
	if err != nil || d.LastActionUUID == nil {
		t.Fatal(d, err)
	}
	entry, err := e.c.LogEntry(context.Background(), *d.LastActionUUID)
	if err != nil || entry.Error != "cancelled by request" {
		t.Fatalf("recorded error %q (%v), want %q", entry.Error, err, "cancelled by request")
	}
}

func TestActionVerbsDocumentTheExitCodes(t *testing.T) {
	e := newCLIEnv(t)
	for _, verb := range [][]string{
		{"generate-artefacts"}, {"clear-artefacts"}, {"up"}, {"down"}, {"logs"},
		{"snapshot"}, {"snapshot", "create"}, {"snapshot", "restore"}, {"snapshot", "delete"},
	} {
		_, wait := e.run(append(verb, "--help")...)
		code, stdout, stderr := wait()
		if code != 0 || !strings.Contains(stdout, exitCodesHelp) {
			t.Errorf("%s --help (exit %d) lacks %q:\n%s%s", strings.Join(verb, " "), code, exitCodesHelp, stdout, stderr)
		}
	}
}

func TestEventsPrintsOneLinePerEventUntilCtrlC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"text", nil, []string{"action-started", "lab up started; action ", "deployment-state", "lab running; action ",
			"lab up cancelled; deployment is cancelled(up); action ", "lab cancelled(up); action "}},
		{"json", []string{"--json"}, []string{`"type":"action-started"`, `"deployment":"lab"`, `"type":"deployment-state"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCLIEnv(t)
			interrupt, stdout, wait := e.start(append([]string{"events"}, tc.flags...)...)
			e.waitStreams(t, 1)
			ctx := context.Background()
			id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
			if err != nil {
				t.Fatal(err)
			}
			e.waitStarted(t)
			if _, err := e.c.Cancel(ctx, "lab", id); err != nil {
				t.Fatal(err)
			}
			for i := 0; strings.Count(stdout(), "\n") < 4 && i < 2000; i++ {
				time.Sleep(10 * time.Millisecond)
			}
			interrupt()
			code, out, stderr := wait()
			if code != 0 {
				t.Fatalf("events exit %d\n%s", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			text := strings.Join(lines, "\n")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("events output lacks %q:\n%s", w, text)
				}
			}
			if len(lines) != 4 {
				t.Errorf("%d lines for one action, want 4 (started, running, ended, failed):\n%s", len(lines), text)
			}
		})
	}
}
