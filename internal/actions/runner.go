// Package actions runs orchestration actions as operations: each has a uuid,
// runs in its own goroutine with its own context, writes one log, can be
// cancelled, and records its outcome in the store when it ends. At most one
// action runs per deployment; the store's state is the guard.
package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/logstream"
	"github.com/testbedos/testbedos/internal/store"
)

// Errors callers branch on.
var (
	// ErrBusy: the deployment already runs an action.
	ErrBusy = api.Categorized(api.ErrConflict, "an action is already running on this deployment")
	// ErrNotRunning: there is no action to cancel.
	ErrNotRunning = api.Categorized(api.ErrConflict, "no action is running on this deployment")
	// ErrBadCommand: the action request does not make sense.
	ErrBadCommand = api.Categorized(api.ErrBadRequest, "bad action request")
	// ErrCancelled is the cause of a context cancelled by the user.
	ErrCancelled = errors.New("cancelled by request")
	// ErrShutdown is the cause of a context cancelled by server shutdown.
	ErrShutdown = api.Categorized(api.ErrUnavailable, "interrupted: the server is shutting down")
)

// Executor does the work of a command. prev is the deployment's state before
// the action; the returned state is recorded when it succeeds.
type Executor interface {
	// Check refuses quickly, before anything is recorded, a command that
	// cannot succeed (invalid topology, wrong state).
	Check(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command) error
	Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log guest.Log) (api.DeploymentState, error)
}

// Options configure a Runner.
type Options struct {
	Store    store.Store
	Hub      *logstream.Hub
	Executor Executor
	Logger   *slog.Logger
	// Observe, when set, hears of every finished action.
	Observe func(cmd api.CommandName, errorCode int, took time.Duration)
}

// Runner starts, cancels and records actions.
type Runner struct {
	opts Options
	wg   sync.WaitGroup

	mu      sync.Mutex
	running map[string]*operation // by deployment
}

type operation struct {
	uuid   string
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// NewRunner returns a runner.
func NewRunner(opts Options) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{opts: opts, running: make(map[string]*operation)}
}

// Start begins the action req on deployment name and returns its uuid. The
// work goes on in the background; Start returns once the action is recorded.
func (r *Runner) Start(ctx context.Context, name string, req api.ActionRequest) (string, error) {
	cmd, err := req.Resolve()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	current, err := r.opts.Store.Deployment(ctx, name)
	if err != nil {
		return "", err
	}
	if current.State.Is(api.StateRunning) {
		return "", fmt.Errorf("deployment %q: %w", name, ErrBusy)
	}
	// With generate_artefacts the artefacts are made first, so it is that
	// step whose preconditions must hold now.
	first := cmd
	if req.GenerateArtefacts {
		first = api.Command{Name: api.CmdGenerateArtefacts}
	}
	if err := r.opts.Executor.Check(ctx, current, current.State, first); err != nil {
		return "", err
	}
	// The log and its index entry come first, the running state last: a
	// crash in between leaves an entry that Recover marks interrupted, never
	// a running deployment whose action is unknown.
	id := uuid.NewString()
	start := time.Now()
	log, err := r.opts.Hub.Create(name, start)
	if err != nil {
		return "", err
	}
	forget := func() {
		bg := context.WithoutCancel(ctx)
		r.opts.Store.DeleteLogEntries(bg, name, []string{id})
		log.Close()
		os.Remove(log.Path())
	}
	entry := api.LogEntry{LogPath: log.Path(), ExecutionTime: start.UTC(), Deployment: name, Command: cmd}
	if err := r.opts.Store.PutLogEntry(ctx, id, entry); err != nil {
		forget()
		return "", err
	}
	var prev api.DeploymentState
	d, err := r.opts.Store.UpdateDeployment(ctx, name, func(d *api.Deployment) error {
		if d.State.Is(api.StateRunning) {
			return fmt.Errorf("deployment %q: %w", name, ErrBusy)
		}
		prev = d.State
		d.State, d.LastActionUUID = api.StateIsRunning, &id
		return nil
	})
	if err != nil {
		forget()
		return "", err
	}

	opCtx, cancel := context.WithCancelCause(context.Background())
	op := &operation{uuid: id, cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	r.running[name] = op
	r.mu.Unlock()
	r.wg.Add(1)
	go r.run(opCtx, op, d, prev, cmd, req.GenerateArtefacts, log, entry, start)
	r.opts.Logger.Info("action started", "deployment", name, "command", cmd.String(), "uuid", id)
	return id, nil
}

func (r *Runner) run(ctx context.Context, op *operation, d api.Deployment, prev api.DeploymentState,
	cmd api.Command, generateFirst bool, log *logstream.Log, entry api.LogEntry, start time.Time) {
	defer r.wg.Done()
	defer close(op.done)
	defer op.cancel(nil)

	log.Printf("==> %s on deployment %s (action %s)", cmd, d.Name, op.uuid)
	end, err := r.execute(ctx, d, prev, cmd, generateFirst, log)
	code, msg := api.ErrorCodeOK, ""
	if err != nil {
		code, msg = errorCode(ctx, err), err.Error()
		end = api.FailedState(cmd)
		log.Printf("==> %s failed (error code %d): %v", cmd, code, err)
	} else {
		log.Printf("==> %s succeeded: deployment is %s", cmd, end)
	}
	took := time.Since(start)
	ms := took.Milliseconds()
	entry.ErrorCode, entry.EndState, entry.DurationMS, entry.Error = &code, &end, &ms, msg
	r.record(d.Name, op.uuid, end, entry)

	r.mu.Lock()
	if r.running[d.Name] == op {
		delete(r.running, d.Name)
	}
	r.mu.Unlock()
	// Followers learn of the end only now, when the outcome is stored.
	if err := log.Close(); err != nil {
		r.opts.Logger.Error("closing action log", "path", log.Path(), "err", err)
	}
	if r.opts.Observe != nil {
		r.opts.Observe(cmd.Name, code, took)
	}
	r.opts.Logger.Info("action finished", "deployment", d.Name, "command", cmd.String(),
		"uuid", op.uuid, "error_code", code, "took", took.Round(time.Millisecond))
}

func (r *Runner) execute(ctx context.Context, d api.Deployment, prev api.DeploymentState,
	cmd api.Command, generateFirst bool, log guest.Log) (api.DeploymentState, error) {
	if generateFirst && cmd.Name != api.CmdGenerateArtefacts {
		gen := api.Command{Name: api.CmdGenerateArtefacts}
		if _, err := r.opts.Executor.Execute(ctx, d, prev, gen, log); err != nil {
			return prev, fmt.Errorf("generate-artefacts: %w", err)
		}
	}
	return r.opts.Executor.Execute(ctx, d, prev, cmd, log)
}

func errorCode(ctx context.Context, err error) int {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrShutdown):
		return api.ErrorCodeInterrupted
	case errors.Is(cause, ErrCancelled):
		return api.ErrorCodeCancelled
	default:
		return api.ErrorCodeFailed
	}
}

// record writes the outcome. It retries for a while: the action has ended and
// losing its outcome would leave the deployment "running" until a restart.
func (r *Runner) record(name, id string, end api.DeploymentState, entry api.LogEntry) {
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		_, errD := r.opts.Store.UpdateDeployment(ctx, name, func(d *api.Deployment) error {
			if d.LastActionUUID == nil || *d.LastActionUUID == id {
				d.State = end
			}
			return nil
		})
		errL := r.opts.Store.PutLogEntry(ctx, id, entry)
		err := errors.Join(errD, errL)
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return
		}
		r.opts.Logger.Error("recording action outcome", "deployment", name, "uuid", id, "attempt", attempt, "err", err)
		if attempt == 4 {
			return
		}
		time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
	}
}

// Cancel asks the running action of deployment name to stop; it returns the
// action's uuid at once. The action cleans up and ends as failed with the
// cancelled error code.
func (r *Runner) Cancel(name string) (string, error) {
	r.mu.Lock()
	op := r.running[name]
	r.mu.Unlock()
	if op == nil {
		return "", fmt.Errorf("deployment %q: %w", name, ErrNotRunning)
	}
	op.cancel(ErrCancelled)
	return op.uuid, nil
}

// Running reports the uuid of the action running on deployment name.
func (r *Runner) Running(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op := r.running[name]
	if op == nil {
		return "", false
	}
	return op.uuid, true
}

// Shutdown interrupts every running action and waits for them to clean up
// and record themselves as interrupted, until ctx ends. Whatever is still
// running then is recorded as interrupted by Recover at the next start.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	for _, op := range r.running {
		op.cancel(ErrShutdown)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actions still running at shutdown: %w", ctx.Err())
	}
}
