package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/netplumb"
	"github.com/testbedos/testbedos/internal/netplumb/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// BenchmarkUp and BenchmarkDown bring N netns guests on one switch up and
// down through the whole engine (state file, stages, worker pool, the netns
// driver, bridge and firewall), next to the plain `ip -batch` script doing
// the same in the same run.
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/engine/
func BenchmarkUp(b *testing.B)   { benchUpDown(b, true) }
func BenchmarkDown(b *testing.B) { benchUpDown(b, false) }

func benchUpDown(b *testing.B, measureUp bool) {
	nettest.RequireRoot(b)
	for _, n := range []int{10, 50, 200} {
		b.Run(fmt.Sprintf("N=%d/engine", n), func(b *testing.B) {
			e, d := engineFor(b, n)
			ctx := context.Background()
			up := func() error { return e.Up(ctx, d, api.UpOptions{}, discard{}) }
			down := func() error { return e.Down(ctx, d, discard{}) }
			timeUpDown(b, measureUp, up, down, func() {})
		})
		b.Run(fmt.Sprintf("N=%d/ipbatch", n), func(b *testing.B) {
			prefix := nettest.Prefix(b)
			p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: n}
			ctx := context.Background()
			up := func() error {
				if err := ip(ctx, "link", "add", "name", p.Bridge, "type", "bridge"); err != nil {
					return err
				}
				if err := ip(ctx, "link", "set", p.Bridge, "up"); err != nil {
					return err
				}
				return benchbase.Up(ctx, p)
			}
			down := func() error {
				if err := benchbase.Down(ctx, p); err != nil {
					return err
				}
				return ip(ctx, "link", "del", p.Bridge)
			}
			// ip returns before the kernel has removed the veths; the next
			// round must not start before that.
			gone := func() { waitGone(b, prefix) }
			timeUpDown(b, measureUp, up, down, gone)
		})
	}
}

// timeUpDown times up or down. For down it also reports gone-ms/op: the
// time until the kernel has removed every veth, which is when the engine's
// down returns but after ip -batch has.
func timeUpDown(b *testing.B, measureUp bool, up, down func() error, settle func()) {
	var gone time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if !measureUp {
			must(b, up())
		}
		start := time.Now()
		b.StartTimer()
		if measureUp {
			must(b, up())
		} else {
			must(b, down())
		}
		b.StopTimer()
		if measureUp {
			must(b, down())
		}
		settle()
		gone += time.Since(start)
	}
	if !measureUp {
		b.ReportMetric(float64(gone.Milliseconds())/float64(b.N), "gone-ms/op")
	}
}

func waitGone(b *testing.B, prefix string) {
	for i := 0; ; i++ {
		links, namespaces, err := nettest.Leftovers(prefix)
		must(b, err)
		if len(links)+len(namespaces) == 0 {
			return
		}
		if i == 1000 {
			b.Fatalf("still there after 10 s: %v %v", links, namespaces)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// engineFor writes a project of n guests on one switch, generates its
// artefacts and returns an engine with the real netns driver.
func engineFor(b *testing.B, n int) (*engine.Engine, api.Deployment) {
	b.Helper()
	var y strings.Builder
	y.WriteString("machines:\n")
	for i := range n {
		fmt.Fprintf(&y, "  - name: g%d\n    network: [{switch: sw0, ip: 10.124.%d.%d}]\n", i, (i+1)>>8, (i+1)&0xff)
	}
	y.WriteString("network:\n  switches:\n    sw0: {subnet: 10.124.0.0/16}\n")
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, 3)
	rand.Read(raw)
	d := api.Deployment{Name: "bench-" + hex.EncodeToString(raw), ProjectLocation: dir}
	e := engine.New(engine.Options{
		Drivers: guest.NewRegistry(netns.New(netns.Options{})),
		Network: netplumb.NewHost(nil),
	})
	must(b, e.GenerateArtefacts(context.Background(), d, discard{}))
	st, err := topology.ReadState(topology.StatePath(dir))
	must(b, err)
	b.Cleanup(func() {
		e.Down(context.Background(), d, discard{})
		nettest.RemoveAll(st.Prefix)
		nettest.RemoveAll("tbos." + d.Name + ".")
	})
	return e, d
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

type discard struct{}

func (discard) Printf(string, ...any)        {}
func (discard) Writer(string) io.WriteCloser { return nopCloser{} }

type nopCloser struct{}

func (nopCloser) Write(p []byte) (int, error) { return len(p), nil }
func (nopCloser) Close() error                { return nil }

var _ actlog.Log = discard{}
