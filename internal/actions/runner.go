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

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/logstream"
	"github.com/testbedos/testbedos/internal/store"
)

// Errors callers branch on.
var (
	// ErrBusy: the deployment already runs an action.
	ErrBusy = api.Categorized(api.ErrConflict, "an action is already running on this deployment")
	// ErrNotRunning: there is no action to cancel.
	ErrNotRunning = api.Categorized(api.ErrConflict, "no action is running on this deployment")
	// ErrNotTheRunningAction: a cancel named an action that is not the
	// deployment's running one (it ended, or never ran there).
	ErrNotTheRunningAction = api.Categorized(api.ErrConflict, "that action is not the running one")
	// ErrShuttingDown: the server is stopping and takes no new action.
	ErrShuttingDown = api.Categorized(api.ErrUnavailable, "the server is shutting down and accepts no new action")
	// ErrBadCommand: the action request does not make sense.
	ErrBadCommand = api.Categorized(api.ErrBadRequest, "bad action request")
	// ErrCancelled is the cause of a context cancelled by the user.
	ErrCancelled = errors.New("cancelled by request")
	// ErrShutdown is the cause of a context cancelled by server shutdown.
	ErrShutdown = errors.New("interrupted: the server is shutting down")
)

// Executor does the work of a command. prev is the deployment's state before
// the action; the returned state is recorded when it succeeds.
type Executor interface {
	// Check refuses quickly, before anything is recorded, a command that
	// cannot succeed (invalid topology, wrong state).
	Check(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command) error
	Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error)
}

// Options configure a Runner.
type Options struct {
	Store    store.Store
	Hub      *logstream.Hub
	Executor Executor
	Logger   *slog.Logger
	// Observe, when set, hears of every finished action.
	Observe func(cmd api.CommandName, errorCode int, took time.Duration)
	// Events, when set, hears of every action start and end and of every
	// deployment state change the runner makes (events.Hub).
	Events Publisher
}

// Publisher takes events without blocking.
type Publisher interface {
	Publish(e api.Event)
}

// Runner starts, cancels and records actions.
type Runner struct {
	opts Options
	wg   sync.WaitGroup

	mu      sync.Mutex
	running map[string]*operation // by deployment
	byUUID  map[string]*operation
	closing bool // Shutdown began
	// pending holds, by deployment, outcomes the store refused (pending.go).
	pending      map[string]*pending
	retriers     sync.WaitGroup
	stopRetry    chan struct{}
	retryStopped bool
}

type operation struct {
	Operation
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// Operation describes a running action.
type Operation struct {
	UUID       string
	Deployment string
	Command    api.Command
	Started    time.Time
}

// NewRunner returns a runner.
func NewRunner(opts Options) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{opts: opts, running: make(map[string]*operation), byUUID: make(map[string]*operation),
		pending: make(map[string]*pending), stopRetry: make(chan struct{})}
}

// Start begins the action req on deployment name and returns its uuid. The
// work goes on in the background; Start returns once the action is recorded.
// After Shutdown began it refuses with ErrShuttingDown.
func (r *Runner) Start(ctx context.Context, name string, req api.ActionRequest) (string, error) {
	return r.StartNoted(ctx, name, req, "")
}

// StartNoted is Start, with note as the action log's first line after its
// heading: why the server started an action of its own (restore).
func (r *Runner) StartNoted(ctx context.Context, name string, req api.ActionRequest, note string) (string, error) {
	// The reservation makes Shutdown wait for a Start already under way.
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return "", fmt.Errorf("deployment %s: %w", name, ErrShuttingDown)
	}
	r.wg.Add(1)
	r.mu.Unlock()
	id, err := r.start(ctx, name, req, note)
	if err != nil {
		r.wg.Done()
	}
	return id, err
}

// busy is the refusal of a second action: it names the running one and how
// to follow it.
func busy(name string, running *string) error {
	if running == nil {
		return fmt.Errorf("deployment %s: %w", name, ErrBusy)
	}
	return fmt.Errorf("deployment %s: %w: action %s; follow it with: kvm-compose logs %s --follow (or cancel it)",
		name, ErrBusy, *running, *running)
}

func (r *Runner) start(ctx context.Context, name string, req api.ActionRequest, note string) (string, error) {
	cmd, err := req.Resolve()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if err := r.refusePending(name); err != nil {
		return "", err
	}
	current, err := r.opts.Store.Deployment(ctx, name)
	if err != nil {
		return "", err
	}
	if current.State.Is(api.StateRunning) {
		return "", busy(name, current.LastActionUUID)
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
			return busy(name, d.LastActionUUID)
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
	op := &operation{
		Operation: Operation{UUID: id, Deployment: name, Command: cmd, Started: start},
		cancel:    cancel, done: make(chan struct{}),
	}
	r.mu.Lock()
	r.running[name], r.byUUID[id] = op, op
	if r.closing {
		// Shutdown began meanwhile: the action was accepted, so it runs
		// and ends as interrupted like the others.
		cancel(ErrShutdown)
	}
	r.mu.Unlock()
	r.publish(api.Event{Type: api.EventActionStarted, Deployment: name, UUID: id, Command: &cmd})
	r.publishState(name, id, api.StateIsRunning)
	go r.run(opCtx, op, d, prev, cmd, req.GenerateArtefacts, log, entry, start, note)
	r.opts.Logger.Info("action started", "deployment", name, "command", cmd.String(), "uuid", id)
	return id, nil
}

func (r *Runner) run(ctx context.Context, op *operation, d api.Deployment, prev api.DeploymentState,
	cmd api.Command, generateFirst bool, log *logstream.Log, entry api.LogEntry, start time.Time, note string) {
	defer r.wg.Done()
	defer close(op.done)
	defer op.cancel(nil)

	log.Printf("==> %s on deployment %s (action %s)", cmd, d.Name, op.UUID)
	if note != "" {
		log.Printf("%s", note)
	}
	end, err := r.execute(ctx, d, prev, cmd, generateFirst, log)
	code, msg := api.ErrorCodeOK, ""
	if err != nil {
		code = errorCode(ctx, err)
		end = api.FailedState(cmd)
		switch code {
		case api.ErrorCodeCancelled:
			// What each guest said of the cancel is in the log; the
			// record says why the action stopped.
			msg = ErrCancelled.Error()
			log.Printf("==> %s cancelled (error code %d): %v", cmd, code, err)
		case api.ErrorCodeInterrupted:
			msg = ErrShutdown.Error()
			log.Printf("==> %s interrupted (error code %d): %v", cmd, code, err)
		default:
			msg = err.Error()
			log.Printf("==> %s failed (error code %d): %v", cmd, code, err)
		}
	} else {
		log.Printf("==> %s succeeded: deployment is %s", cmd, end)
	}
	if cmd.Name.KeepsState() {
		// A snapshot, a power change or a time line never changes the
		// deployment's state.
		end = prev
	}
	took := time.Since(start)
	ms := took.Milliseconds()
	entry.ErrorCode, entry.EndState, entry.DurationMS, entry.Error = &code, &end, &ms, msg
	changed := r.record(d.Name, op.UUID, end, entry)

	r.mu.Lock()
	if r.running[d.Name] == op {
		delete(r.running, d.Name)
	}
	delete(r.byUUID, op.UUID)
	r.mu.Unlock()
	r.publish(api.Event{Type: api.EventActionEnded, Deployment: d.Name, UUID: op.UUID, Command: &cmd,
		State: &end, ErrorCode: &code, Error: msg})
	if changed {
		r.publishState(d.Name, op.UUID, end)
	}
	// Followers learn of the end only now, when the outcome is stored (or
	// kept in memory, and served as stored, when the store refused it).
	if err := log.Close(); err != nil {
		r.opts.Logger.Error("closing action log", "path", log.Path(), "err", err)
	}
	if r.opts.Observe != nil {
		r.opts.Observe(cmd.Name, code, took)
	}
	r.opts.Logger.Info("action finished", "deployment", d.Name, "command", cmd.String(),
		"uuid", op.UUID, "error_code", code, "took", took.Round(time.Millisecond))
}

func (r *Runner) publish(e api.Event) {
	if r.opts.Events != nil {
		r.opts.Events.Publish(e)
	}
}

// publishState tells subscribers that deployment name is now in state st,
// set by action id (empty for none).
func (r *Runner) publishState(name, id string, st api.DeploymentState) {
	r.publish(api.Event{Type: api.EventDeploymentState, Deployment: name, UUID: id, State: &st})
}

func (r *Runner) execute(ctx context.Context, d api.Deployment, prev api.DeploymentState,
	cmd api.Command, generateFirst bool, log actlog.Log) (api.DeploymentState, error) {
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
