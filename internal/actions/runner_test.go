package actions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/logstream"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/store/file"
)

// fakeExecutor runs fn; the default blocks until release is closed or the
// context ends.
type fakeExecutor struct {
	release chan struct{}
	fail    error
	// noArtefacts makes Check refuse up, as the engine does before
	// generate-artefacts.
	noArtefacts bool
	// snapshots makes Check accept snapshot actions.
	snapshots bool
}

func (f *fakeExecutor) Check(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command) error {
	if (cmd.Name == api.CmdSnapshot && !f.snapshots) || (f.noArtefacts && cmd.Name == api.CmdUp) {
		return errRefused
	}
	return nil
}

var errRefused = errors.New("refused by check")

func (f *fakeExecutor) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	log.Printf("working on %s", cmd)
	select {
	case <-f.release:
	case <-ctx.Done():
		log.Printf("cleaning up")
		// As the engine did: every guest reports the cancel.
		return prev, errors.Join(fmt.Errorf("guest web: up web: %w", ctx.Err()), fmt.Errorf("guest db: %w", ctx.Err()))
	}
	if f.fail != nil {
		return prev, f.fail
	}
	switch cmd.Name {
	case api.CmdUp:
		return api.StateIsUp, nil
	case api.CmdSnapshot:
		return prev, nil
	}
	return api.StateIsDown, nil
}

type fixture struct {
	store  store.Store
	hub    *logstream.Hub
	exec   *fakeExecutor
	runner *Runner
}

// openStore opens a file store and a log hub in a fresh folder, dir.
func openStore(t *testing.T) (dir string, s *file.Store, hub *logstream.Hub) {
	t.Helper()
	dir = t.TempDir()
	s, err := file.Open(dir+"/deployments", dir+"/deployed")
	if err != nil {
		t.Fatal(err)
	}
	hub, err = logstream.NewHub(dir + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	return dir, s, hub
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir, s, hub := openStore(t)
	f := &fixture{store: s, hub: hub, exec: &fakeExecutor{release: make(chan struct{})}}
	f.runner = NewRunner(Options{Store: s, Hub: hub, Executor: f.exec})
	if err := s.CreateDeployment(context.Background(), api.Deployment{Name: "dep", ProjectLocation: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.runner.Shutdown(ctx)
	})
	return f
}

// wait follows the action's log to its end and returns its log entry.
func (f *fixture) wait(t *testing.T, id string) (api.LogEntry, []string) {
	t.Helper()
	e, err := f.store.LogEntry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	if err := f.hub.Follow(context.Background(), e.LogPath, func(l string) error {
		lines = append(lines, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e, err = f.store.LogEntry(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Finished() {
		t.Fatalf("log ended but the entry is not finished: %+v", e)
	}
	return e, lines
}

func (f *fixture) state(t *testing.T) api.DeploymentState {
	t.Helper()
	d, err := f.store.Deployment(context.Background(), "dep")
	if err != nil {
		t.Fatal(err)
	}
	return d.State
}

func up() api.ActionRequest { return api.ActionRequest{Command: api.Command{Name: api.CmdUp}} }

func TestSuccessRecordsOutcome(t *testing.T) {
	f := newFixture(t)
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	if !f.state(t).Is(api.StateRunning) {
		t.Fatalf("state while running = %v", f.state(t))
	}
	close(f.exec.release)
	e, lines := f.wait(t, id)
	if *e.ErrorCode != 0 || !e.EndState.Is(api.StateUp) || e.DurationMS == nil {
		t.Fatalf("entry = %+v", e)
	}
	if !f.state(t).Is(api.StateUp) {
		t.Fatalf("state after = %v", f.state(t))
	}
	if len(lines) < 3 || !strings.Contains(lines[1], "working on up") || !strings.Contains(lines[len(lines)-1], "succeeded") {
		t.Fatalf("log lines = %q", lines)
	}
}

func TestSecondActionWhileRunningIsBusy(t *testing.T) {
	f := newFixture(t)
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.runner.Start(context.Background(), "dep", api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second start: %v, want ErrBusy", err)
	}
	if want := "kvm-compose logs " + id + " --follow"; !strings.Contains(err.Error(), want) {
		t.Fatalf("second start: %q does not say %q", err, want)
	}
	close(f.exec.release)
	f.wait(t, id)
	if _, err := f.runner.Start(context.Background(), "dep", up()); err != nil {
		t.Fatalf("start after the first ended: %v", err)
	}
}

func TestFailureRecordsErrorCode(t *testing.T) {
	f := newFixture(t)
	f.exec.fail = errors.New("setup script web-setup.sh exited with status 3")
	close(f.exec.release)
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.wait(t, id)
	if *e.ErrorCode != api.ErrorCodeFailed || !strings.Contains(e.Error, "status 3") {
		t.Fatalf("entry = %+v", e)
	}
	st := f.state(t)
	if !st.Is(api.StateFailed) || st.Failed.Name != api.CmdUp {
		t.Fatalf("state = %v", st)
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	if _, err := f.runner.Cancel("dep", ""); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("cancel with nothing running: %v", err)
	}
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.runner.Cancel("dep", "")
	if err != nil || got != id {
		t.Fatalf("Cancel = %q, %v", got, err)
	}
	e, lines := f.wait(t, id)
	if *e.ErrorCode != api.ErrorCodeCancelled || e.Error != "cancelled by request" {
		t.Fatalf("entry = %+v, want error code 2 and error %q", e, "cancelled by request")
	}
	if !strings.Contains(strings.Join(lines, "\n"), "cleaning up") {
		t.Fatalf("the action did not see the cancel: %q", lines)
	}
}

func TestShutdownInterrupts(t *testing.T) {
	f := newFixture(t)
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.runner.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, _ := f.wait(t, id)
	if *e.ErrorCode != api.ErrorCodeInterrupted {
		t.Fatalf("entry = %+v", e)
	}
}

func TestBadRequest(t *testing.T) {
	f := newFixture(t)
	_, err := f.runner.Start(context.Background(), "dep", api.ActionRequest{Command: api.Command{Name: api.CmdDown}, Provision: true})
	if !errors.Is(err, ErrBadCommand) {
		t.Fatalf("err = %v", err)
	}
	if !f.state(t).Is(api.StateDown) {
		t.Fatalf("a refused request changed the state: %v", f.state(t))
	}
	snap := api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot}, Snapshot: &api.SnapshotOptions{SubCommand: "create", Guest: "vm1", Name: "s1"}}
	if _, err := f.runner.Start(context.Background(), "dep", snap); !errors.Is(err, errRefused) {
		t.Fatalf("check not consulted: %v", err)
	}
	if d, _ := f.store.Deployment(context.Background(), "dep"); d.LastActionUUID != nil {
		t.Fatalf("a refused action was recorded: %+v", d)
	}
	if _, err := f.runner.Start(context.Background(), "missing", up()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown deployment: %v", err)
	}
}

func TestRecoverMarksInterrupted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := "left-over"
	cmd := api.Command{Name: api.CmdUp}
	f.store.UpdateDeployment(ctx, "dep", func(d *api.Deployment) error {
		d.State, d.LastActionUUID = api.StateIsRunning, &id
		return nil
	})
	f.store.PutLogEntry(ctx, id, api.LogEntry{Deployment: "dep", LogPath: "/x", Command: cmd})
	n, err := f.runner.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	e, _ := f.store.LogEntry(ctx, id)
	if e.ErrorCode == nil || *e.ErrorCode != api.ErrorCodeInterrupted || !e.EndState.Is(api.StateFailed) {
		t.Fatalf("entry = %+v", e)
	}
	st := f.state(t)
	if !st.Is(api.StateFailed) || st.Failed.Name != api.CmdUp {
		t.Fatalf("state = %v", st)
	}
}

// A server that stopped after storing an action's finished entry but
// before the deployment's state: at the next start the state is the
// entry's end state, not a failure.
func TestRecoverTakesAFinishedEntrysEndState(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := "stored-entry"
	code, end := api.ErrorCodeOK, api.StateIsUp
	f.store.UpdateDeployment(ctx, "dep", func(d *api.Deployment) error {
		d.State, d.LastActionUUID = api.StateIsRunning, &id
		return nil
	})
	f.store.PutLogEntry(ctx, id, api.LogEntry{Deployment: "dep", LogPath: "/x", Command: api.Command{Name: api.CmdUp},
		ErrorCode: &code, EndState: &end})
	if n, err := f.runner.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("Recover = %d, %v; want no entry to mark", n, err)
	}
	if st := f.state(t); !st.Is(api.StateUp) {
		t.Fatalf("state = %v, want up (the entry's end state)", st)
	}
}

func TestGenerateFirstIsCheckedInsteadOfTheCommand(t *testing.T) {
	f := newFixture(t)
	f.exec.noArtefacts = true
	if _, err := f.runner.Start(context.Background(), "dep", up()); !errors.Is(err, errRefused) {
		t.Fatalf("up without artefacts: %v", err)
	}
	req := up()
	req.GenerateArtefacts = true
	id, err := f.runner.Start(context.Background(), "dep", req)
	if err != nil {
		t.Fatalf("up with generate_artefacts: %v", err)
	}
	close(f.exec.release)
	if e, _ := f.wait(t, id); *e.ErrorCode != 0 {
		t.Fatalf("entry = %+v", e)
	}
}
