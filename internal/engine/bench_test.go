package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
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
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// BenchmarkNetns brings N netns guests up and down through the whole engine
// (state file, stages, worker pool, the netns driver, bridges and firewall)
// and, interleaved in the same iterations, the plain `ip -batch` scripts
// doing the same. It reports both and their ratio:
//
//	up-ms, ipbatch-up-ms, up-x-of-ipbatch
//	down-ms, ipbatch-down-ms, down-x-of-ipbatch
//
// The engine's down returns when the kernel has removed every veth; the ip
// batch returns before that, so its down is timed until the kernel is done
// too (the floor).
//
//	go test -run '^$' -bench Netns -benchtime 3x ./internal/engine/
func BenchmarkNetns(b *testing.B) {
	nettest.RequireRoot(b)
	for _, size := range []struct{ guests, switches int }{{200, 1}, {1000, 4}} {
		b.Run(fmt.Sprintf("guests=%d,switches=%d", size.guests, size.switches), func(b *testing.B) {
			benchNetns(b, size.guests, size.switches)
		})
	}
}

func benchNetns(b *testing.B, n, switches int) {
	ctx := context.Background()
	e, d, hostVeths := engineFor(b, n, switches)
	engUp := func() error { return e.Up(ctx, d, api.UpOptions{}, discard{}) }
	engDown := func() error { return e.Down(ctx, d, discard{}) }

	prefix := nettest.Prefix(b)
	p := benchbase.Plan{Prefix: prefix, N: n}
	for k := range switches {
		p.Bridges = append(p.Bridges, fmt.Sprintf("%sbr%d", prefix, k))
	}
	floor := benchbase.NewFloor(p)
	batchUp, batchDown := func() error { return floor.Up(ctx) }, func() error { return floor.Down(ctx) }

	var engUpT, engDownT, batchUpT, batchDownT time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Alternate who goes first, so neither always pays for the
		// other's background clean-up.
		steps := []func(){
			func() {
				engUpT += timed(b, engUp)
				engDownT += timed(b, engDown)
				// Down promises the veths are gone: check, do not wait.
				if left, err := links.WithPrefix(hostVeths); err != nil || len(left) > 0 {
					b.Fatalf("after down: links %v left (%v)", left, err)
				}
			},
			func() {
				batchUpT += timed(b, batchUp)
				batchDownT += timed(b, batchDown)
			},
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			step()
		}
	}
	ms := func(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(engUpT), "up-ms")
	b.ReportMetric(ms(batchUpT), "ipbatch-up-ms")
	b.ReportMetric(float64(engUpT)/float64(batchUpT), "up-x-of-ipbatch")
	b.ReportMetric(ms(engDownT), "down-ms")
	b.ReportMetric(ms(batchDownT), "ipbatch-down-ms")
	b.ReportMetric(float64(engDownT)/float64(batchDownT), "down-x-of-ipbatch")
	b.ReportMetric(0, "ns/op")
}

// timed runs step with the benchmark timer on, then lets the kernel finish
// freeing namespaces in the background, so that the next step does not
// pay for this one.
func timed(b *testing.B, step func() error) time.Duration {
	b.Helper()
	b.StartTimer()
	start := time.Now()
	err := step()
	took := time.Since(start)
	b.StopTimer()
	must(b, err)
	time.Sleep(300 * time.Millisecond)
	return took
}

// engineFor writes a project of n guests spread round-robin over the given
// number of switches, generates its artefacts and returns an engine with
// the real netns driver, and the prefix of the host ends of its veths.
func engineFor(b *testing.B, n, switches int) (*engine.Engine, api.Deployment, string) {
	b.Helper()
	var y strings.Builder
	y.WriteString("machines:\n")
	for i := range n {
		k, j := i%switches, i/switches+1
		fmt.Fprintf(&y, "  - name: g%d\n    network: [{switch: sw%d, ip: 10.%d.%d.%d}]\n", i, k, 124+k, j>>8, j&0xff)
	}
	y.WriteString("network:\n  switches:\n")
	for k := range switches {
		fmt.Fprintf(&y, "    sw%d: {subnet: 10.%d.0.0/16}\n", k, 124+k)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, 3)
	rand.Read(raw)
	d := api.Deployment{Name: "bench-" + hex.EncodeToString(raw), ProjectLocation: dir}
	e := engine.New(engine.Options{
		Drivers: guest.NewRegistry(netns.New(netns.Options{})),
		Network: hostnet.NewHost(nil),
	})
	must(b, e.GenerateArtefacts(context.Background(), d, discard{}))
	st, err := topology.ReadState(topology.StatePath(dir))
	must(b, err)
	b.Cleanup(func() {
		e.Down(context.Background(), d, discard{})
		nettest.RemoveAll(st.Prefix)
		nettest.RemoveAll("tbos." + d.Name + ".")
	})
	return e, d, st.Prefix + "v"
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
