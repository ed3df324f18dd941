package benchbase

import (
	"context"
	"errors"
	"sync"
)

// ForEach runs fn for 0…n-1 on at most workers goroutines, as the
// engine's stages do, and joins the errors: how the tests and benchmarks
// of a guest driver make and remove many guests at once.
func ForEach(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	sem := make(chan struct{}, workers)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
