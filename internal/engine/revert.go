package engine

import (
	"context"
	"errors"
	"sync"
)

// revert collects the undo steps of what an action made, each added by the
// step that made the thing; run performs them newest first. Only what was
// made is undone: a step that found its object there adds nothing.
type revert struct {
	mu    sync.Mutex
	steps []func(context.Context) error
}

func (r *revert) add(step func(context.Context) error) {
	r.mu.Lock()
	r.steps = append(r.steps, step)
	r.mu.Unlock()
}

func (r *revert) run(ctx context.Context) error {
	r.mu.Lock()
	steps := r.steps
	r.steps = nil
	r.mu.Unlock()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		errs = append(errs, steps[i](ctx))
	}
	return errors.Join(errs...)
}
