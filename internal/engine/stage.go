package engine

import (
	"context"
	"errors"
	"sync"

	"github.com/testbedos/testbedos/internal/guest"
)

// progress writes the stage lines the CLI and GUI show: "==> up [3/6] network: 1 switch".
type progress struct {
	log   guest.Log
	verb  string
	total int
	n     int
}

func newProgress(log guest.Log, verb string, total int) *progress {
	return &progress{log: log, verb: verb, total: total}
}

func (p *progress) stage(name, format string, args ...any) {
	p.n++
	p.log.Printf("==> %s [%d/%d] %s: "+format, append([]any{p.verb, p.n, p.total, name}, args...)...)
}

func (p *progress) item(format string, args ...any) { p.log.Printf("    "+format, args...) }

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
