package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/testbedos/testbedos/internal/actlog"
)

// progress writes the stage lines the CLI and GUI show: "==> up [3/6] network: 1 switch".
type progress struct {
	log   actlog.Log
	verb  string
	total int
	n     int
}

func newProgress(log actlog.Log, verb string, total int) *progress {
	return &progress{log: log, verb: verb, total: total}
}

func (p *progress) stage(name, format string, args ...any) {
	p.n++
	p.log.Printf("==> %s [%d/%d] %s: "+format, append([]any{p.verb, p.n, p.total, name}, args...)...)
}

// stage is one step of up or down, as data: what it plans, the items it
// works on concurrently, and what it records when they are done. Items
// register their own undo steps with the run's revert.
type stage struct {
	name string
	// prepare runs first, alone, and returns the stage line's detail.
	prepare func(ctx context.Context) (string, error)
	// detail is the stage line's detail of a stage without prepare.
	detail func() string
	// items are made after prepare; noun counts them in the stage line
	// when there is neither prepare nor detail.
	items func() []item
	noun  string
	// collect runs every item even after one failed (down, scripts);
	// otherwise the first failure cancels the rest.
	collect bool
	// limit bounds the items worked on at once; 0 is the engine's
	// Concurrency.
	limit int
	// done runs after the items, whatever they did (saving the record).
	done func(ctx context.Context) error
	// wrap marks the stage's failure (errScripts).
	wrap error
}

// item is one resource of a stage.
type item func(ctx context.Context) error

// runStages runs the stages in order; a stage starts only when the one
// before succeeded.
func (e *Engine) runStages(ctx context.Context, p *progress, stages []stage) error {
	for _, st := range stages {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		var detail string
		if st.prepare != nil {
			d, err := st.prepare(ctx)
			if err != nil {
				return err
			}
			detail = d
		}
		var items []item
		if st.items != nil {
			items = st.items()
		}
		switch {
		case st.prepare != nil:
		case st.detail != nil:
			detail = st.detail()
		default:
			detail = count(len(items), st.noun)
		}
		p.stage(st.name, "%s", detail)
		var err error
		if len(items) > 0 {
			limit := st.limit
			if limit == 0 {
				limit = e.opts.Concurrency
			}
			err = forEach(ctx, limit, len(items), !st.collect, func(ctx context.Context, i int) error { return items[i](ctx) })
		}
		if st.done != nil {
			err = errors.Join(err, st.done(ctx))
		}
		if err != nil {
			if st.wrap != nil {
				return fmt.Errorf("%w: %w", st.wrap, err)
			}
			return err
		}
	}
	return ctx.Err()
}

// forEach calls fn for 0..n-1 with at most limit calls at once. With
// failFast the first error cancels the rest and is returned; otherwise
// every item runs and all errors are joined. A cancelled ctx stops
// starting new items, and then forEach returns ctx's cause once: what
// each item said of the cancel is a consequence, not news.
func forEach(ctx context.Context, limit, n int, failFast bool, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return ctx.Err()
	}
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(1, limit))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				if failFast {
					cancel(err)
				}
			}
		}()
	}
	wg.Wait()
	if parent.Err() != nil {
		return context.Cause(parent)
	}
	if len(errs) == 0 {
		return context.Cause(ctx)
	}
	if failFast {
		return errs[0]
	}
	return errors.Join(errs...)
}
