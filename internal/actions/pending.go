package actions

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// ErrOutcomeUnwritten: the last action's outcome could not be written to the
// store yet (a full disk, say), so the deployment takes no new action.
var ErrOutcomeUnwritten = api.Categorized(api.ErrUnavailable, "the outcome of the last action could not be recorded yet")

// Backoff between attempts to write an outcome kept in memory.
const (
	firstRetry = time.Second
	maxRetry   = 30 * time.Second
)

// pending is an action's outcome that the store refused. The runner keeps
// it in memory and serves it (Records) as if written, retries writing it
// until the store takes it, and meanwhile refuses new actions on the
// deployment: an outcome is never lost while the server runs, and no later
// action can be recorded before it.
type pending struct {
	id    string
	end   api.DeploymentState
	entry api.LogEntry
	err   error // the last write's error; under Runner.mu
	kick  chan struct{}
}

// write records an action's outcome once: the log entry, then the
// deployment's state (unless a later action owns it). changed says the
// state was set. The entry goes first so that a client that sees the
// deployment's new state finds the action's entry finished.
func (r *Runner) write(name, id string, end api.DeploymentState, entry api.LogEntry) (changed bool, err error) {
	ctx := context.Background()
	errL := r.opts.Store.PutLogEntry(ctx, id, entry)
	_, errD := r.opts.Store.UpdateDeployment(ctx, name, func(d *api.Deployment) error {
		changed = false
		if d.LastActionUUID == nil || *d.LastActionUUID == id {
			d.State, changed = end, true
		}
		return nil
	})
	return changed && errD == nil, errors.Join(errL, errD)
}

// record writes the outcome and reports whether the deployment's state is
// now end. A few quick attempts ride out a passing fault; after them the
// outcome is kept in memory and retried in the background (keep).
func (r *Runner) record(name, id string, end api.DeploymentState, entry api.LogEntry) bool {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
		}
		var changed bool
		changed, err = r.write(name, id, end, entry)
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return changed
		}
		r.opts.Logger.Warn("recording action outcome", "deployment", name, "uuid", id, "attempt", attempt, "err", err)
	}
	r.keep(name, &pending{id: id, end: end, entry: entry, err: err, kick: make(chan struct{}, 1)})
	return true
}

// keep holds p in memory and starts retrying it.
func (r *Runner) keep(name string, p *pending) {
	err := p.err // p is shared once in the map
	r.mu.Lock()
	r.pending[name] = p
	stopped := r.retryStopped
	if !stopped {
		r.retriers.Add(1)
	}
	r.mu.Unlock()
	if stopped {
		r.opts.Logger.Error("LOST: the outcome of an action could not be written during shutdown; at the next start it is reported interrupted",
			"deployment", name, "uuid", p.id, "end_state", p.end.String(), "err", err, "hint", spaceHint(err))
		return
	}
	r.opts.Logger.Error("the outcome of an action could not be written; it is kept in memory and retried until it is, and the deployment takes no new action meanwhile",
		"deployment", name, "uuid", p.id, "end_state", p.end.String(), "err", err, "hint", spaceHint(err))
	go r.retry(name, p)
}

// retry writes p with growing pauses until the store takes it, the
// deployment is deleted, or Shutdown stops it.
func (r *Runner) retry(name string, p *pending) {
	defer r.retriers.Done()
	delay := firstRetry
	for {
		select {
		case <-r.stopRetry:
			return
		case <-p.kick:
		case <-time.After(delay):
		}
		if done, _ := r.flush(name, p); done {
			return
		}
		delay = min(2*delay, maxRetry)
	}
}

// flush tries once to write p, the pending outcome of deployment name. It
// reports whether p is settled: written, or no longer pending.
func (r *Runner) flush(name string, p *pending) (bool, error) {
	r.mu.Lock()
	current := r.pending[name]
	r.mu.Unlock()
	if current != p {
		return true, nil
	}
	_, err := r.write(name, p.id, p.end, p.entry)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.err = err
		return false, err
	}
	if r.pending[name] == p {
		delete(r.pending, name)
	}
	if err == nil {
		r.opts.Logger.Info("the outcome kept in memory is written", "deployment", name, "uuid", p.id)
	}
	return true, nil
}

// refusePending is nil when deployment name has no outcome waiting to be
// written. Otherwise it tries once more to write it (space may have been
// freed) and, when that fails, returns why no action can start.
func (r *Runner) refusePending(name string) error {
	r.mu.Lock()
	p := r.pending[name]
	r.mu.Unlock()
	if p == nil {
		return nil
	}
	done, err := r.flush(name, p)
	if done {
		return nil
	}
	return fmt.Errorf("deployment %s: %w: action %s ended %s but the data folder refused its record (%v); %s. It is retried until written, and actions run again once it is",
		name, ErrOutcomeUnwritten, p.id, p.end, err, spaceHint(err))
}

// spaceHint says what the operator can do about a failed write.
func spaceHint(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the disk is full: free space in the server's data folder (old action logs under orchestration/ can go, and images no deployment uses)"
	case errors.Is(err, syscall.EROFS):
		return "the data folder is read-only: remount it writable"
	}
	return "check that the server's data folder is writable"
}

// flushAtShutdown tries once more to write every pending outcome, after
// the retry loops have stopped, and says loudly which are lost.
func (r *Runner) flushAtShutdown() {
	r.mu.Lock()
	if !r.retryStopped {
		close(r.stopRetry)
	}
	r.retryStopped = true
	r.mu.Unlock()
	r.retriers.Wait()
	r.mu.Lock()
	left := make(map[string]*pending, len(r.pending))
	for name, p := range r.pending {
		left[name] = p
	}
	r.mu.Unlock()
	for name, p := range left {
		if done, err := r.flush(name, p); !done {
			r.opts.Logger.Error("LOST: the outcome of an action could not be written before shutdown; at the next start it is reported interrupted",
				"deployment", name, "uuid", p.id, "end_state", p.end.String(), "err", err, "hint", spaceHint(err))
		}
	}
}
