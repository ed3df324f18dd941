package actions

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// Cancel asks the running action of deployment name to stop and returns its
// uuid at once; the action cleans up and ends with the cancelled error code.
// With a non-empty id only that action is cancelled: when it is not the one
// running on the deployment (it ended, say, and another began) nothing is
// cancelled and the error wraps ErrNotTheRunningAction, naming the running
// one. A caller that holds the id it started can so never cancel a later
// action by mistake.
func (r *Runner) Cancel(name, id string) (string, error) {
	r.mu.Lock()
	op := r.running[name]
	r.mu.Unlock()
	switch {
	case id != "" && op == nil:
		return "", fmt.Errorf("deployment %s: action %s: %w; no action is running", name, id, ErrNotTheRunningAction)
	case id != "" && op.UUID != id:
		return "", fmt.Errorf("deployment %s: action %s: %w; the running action is %s", name, id, ErrNotTheRunningAction, op.UUID)
	case op == nil:
		return "", fmt.Errorf("deployment %s: %w", name, ErrNotRunning)
	}
	op.cancel(ErrCancelled)
	return op.UUID, nil
}

// Running reports the uuid of the action running on deployment name.
func (r *Runner) Running(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op := r.running[name]
	if op == nil {
		return "", false
	}
	return op.UUID, true
}

// List returns the running actions, oldest first.
func (r *Runner) List() []Operation {
	r.mu.Lock()
	out := make([]Operation, 0, len(r.byUUID))
	for _, op := range r.byUUID {
		out = append(out, op.Operation)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Operation) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return out
}

// Wait blocks until action id has ended (or ctx ends) and returns its
// record. An action that ended before returns at once; an unknown id is
// store.ErrNotFound.
func (r *Runner) Wait(ctx context.Context, id string) (api.LogEntry, error) {
	r.mu.Lock()
	op := r.byUUID[id]
	r.mu.Unlock()
	if op != nil {
		select {
		case <-op.done:
		case <-ctx.Done():
			return api.LogEntry{}, ctx.Err()
		}
	}
	// An action leaves byUUID only once its outcome is stored, or kept in
	// memory when the store refused it.
	e, err := r.Records().LogEntry(ctx, id)
	if err != nil {
		return api.LogEntry{}, err
	}
	if !e.Finished() {
		return e, fmt.Errorf("action %s is recorded as running but this server does not run it", id)
	}
	return e, nil
}

// Shutdown refuses new actions from now on (ErrShuttingDown), interrupts
// every running one and waits for them to clean up and record themselves as
// interrupted, until ctx ends. Whatever is still running then is recorded as
// interrupted by Recover at the next start. Outcomes kept in memory because
// the store refused them are tried once more.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
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
		r.flushAtShutdown()
		return nil
	case <-ctx.Done():
		r.flushAtShutdown()
		return fmt.Errorf("actions still running at shutdown: %w", ctx.Err())
	}
}
