package netns

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// benchWorkers matches the engine's default pool on a 2-core host
// (max(8, 4×CPUs)) for up, destroyWorkers its pool for down.
const (
	benchWorkers   = 8
	destroyWorkers = 64
)

// BenchmarkUp brings N guests up on one bridge, with the driver (through
// a worker pool like the engine's) and with the ip -batch yardstick.
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/guest/netns/
func BenchmarkUp(b *testing.B) { benchmarkUpDown(b, true) }

// BenchmarkDown takes N guests down again. The driver returns only once
// the host-side veths are gone; ip -batch returns before that, so its
// variant also reports gone-ns/op, the time until they are.
func BenchmarkDown(b *testing.B) { benchmarkUpDown(b, false) }

type upDown struct {
	up, down func(ctx context.Context) error
}

func benchmarkUpDown(b *testing.B, measureUp bool) {
	nettest.RequireRoot(b)
	for _, n := range []int{10, 50, 200} {
		for _, variant := range []string{"driver", "ipbatch"} {
			b.Run(fmt.Sprintf("N=%d/%s", n, variant), func(b *testing.B) {
				prefix := nettest.Prefix(b)
				p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: n}
				upBridge(b, p)
				ud := variants(p)[variant]
				ctx := context.Background()
				var hostVeths []string
				for i := range n {
					hostVeths = append(hostVeths, p.HostVeth(i))
				}
				watcher := links.NewWatcher()
				var gone time.Duration
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					if !measureUp {
						if err := ud.up(ctx); err != nil {
							b.Fatal(err)
						}
						settle()
					}
					b.StartTimer()
					start := time.Now()
					step := ud.up
					if !measureUp {
						step = ud.down
					}
					if err := step(ctx); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if measureUp {
						if err := ud.down(ctx); err != nil {
							b.Fatal(err)
						}
					} else if variant == "driver" {
						// Destroy promises the host ends are gone when
						// it returns: check, do not wait.
						if left, err := links.WithPrefix(prefix + "h"); err != nil || len(left) > 0 {
							b.Fatalf("after Destroy: links %v left (%v)", left, err)
						}
						gone += time.Since(start)
					}
					// The next round must not pay for this one's
					// teardown.
					if err := watcher.WaitGone(ctx, hostVeths...); err != nil {
						b.Fatal(err)
					}
					if !measureUp && variant == "ipbatch" {
						gone += time.Since(start)
					}
					settle()
				}
				if !measureUp {
					b.ReportMetric(float64(gone.Nanoseconds())/float64(b.N), "gone-ns/op")
				}
			})
		}
	}
}

// settle lets the kernel finish freeing namespaces in the background, so
// one round's teardown does not slow the next one down.
func settle() { time.Sleep(150 * time.Millisecond) }

func variants(p benchbase.Plan) map[string]upDown {
	st := stateFor(p)
	d := New(Options{})
	log := &guesttest.Log{}
	return map[string]upDown{
		"driver": {
			up: func(ctx context.Context) error {
				// As the engine does: Exists, then Create.
				return benchbase.ForEach(ctx, benchWorkers, len(st.Guests), func(ctx context.Context, i int) error {
					if ok, err := d.Exists(ctx, guest.Deployment{}, &st.Guests[i]); err != nil || ok {
						return fmt.Errorf("Exists = %v, %v", ok, err)
					}
					return created(d.Create(ctx, guest.LocalDeployment(st), &st.Guests[i], log))
				})
			},
			down: func(ctx context.Context) error {
				return benchbase.ForEach(ctx, destroyWorkers, len(st.Guests), func(ctx context.Context, i int) error {
					return d.Destroy(ctx, guest.LocalDeployment(st), &st.Guests[i], log)
				})
			},
		},
		"ipbatch": {
			up:   func(ctx context.Context) error { return benchbase.Up(ctx, p) },
			down: func(ctx context.Context) error { return benchbase.Down(ctx, p) },
		},
	}
}
