package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Defect 10: a cancel must come back once, not as one "context canceled"
// per guest.
func TestForEachReturnsTheCauseOnceWhenCancelled(t *testing.T) {
	cause := errors.New("cancelled by request")
	for _, failFast := range []bool{false, true} {
		t.Run(fmt.Sprintf("failFast=%v", failFast), func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			started := make(chan struct{}, 50)
			go func() {
				for range 4 {
					<-started
				}
				cancel(cause)
			}()
			err := forEach(ctx, 4, 50, failFast, func(ctx context.Context, i int) error {
				started <- struct{}{}
				<-ctx.Done()
				return fmt.Errorf("guest g%d: up g%d: %w", i, i, ctx.Err())
			})
			if !errors.Is(err, cause) || err.Error() != cause.Error() {
				t.Fatalf("err = %q, want the cause once (%q)", err, cause)
			}
			if strings.Contains(err.Error(), "context canceled") {
				t.Fatalf("err repeats the items' cancel: %q", err)
			}
		})
	}
}
