package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// BenchmarkUpDownThroughServer measures up and down of N netns guests as a
// user sees them: from the POST of the action to the outcome the server
// sends when the deployment's state is written (up, or down with every veth
// gone). In the same iterations, interleaved, plain `ip -batch` scripts do
// the same work (the floor); it reports both and their ratio:
//
//	up-ms, ipbatch-up-ms, up-x-of-ipbatch
//	down-ms, ipbatch-down-ms, down-x-of-ipbatch
//
//	go test -run '^$' -bench UpDownThroughServer -benchtime 3x ./test/e2e/
func BenchmarkUpDownThroughServer(b *testing.B) {
	nettest.RequireRoot(b)
	for _, size := range []struct{ guests, switches int }{{200, 1}, {1000, 4}} {
		b.Run(fmt.Sprintf("guests=%d,switches=%d", size.guests, size.switches), func(b *testing.B) {
			benchThroughServer(b, size.guests, size.switches)
		})
	}
}

func benchThroughServer(b *testing.B, n, switches int) {
	ctx := context.Background()
	s := startServer(b)
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
	_, run := benchLab(b, s, y.String())

	prefix := nettest.Prefix(b)
	p := benchbase.Plan{Prefix: prefix, N: n}
	for k := range switches {
		p.Bridges = append(p.Bridges, fmt.Sprintf("%sbr%d", prefix, k))
	}
	b.Cleanup(func() { nettest.RemoveAll(prefix) })
	floor := benchbase.NewFloor(p)
	batchUp, batchDown := func() error { return floor.Up(ctx) }, func() error { return floor.Down(ctx) }

	var upT, downT, batchUpT, batchDownT time.Duration
	timed := func(step func() error) time.Duration {
		b.StartTimer()
		start := time.Now()
		err := step()
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		// Let the kernel finish freeing namespaces before the next step.
		time.Sleep(300 * time.Millisecond)
		return took
	}
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		steps := []func(){
			func() {
				upT += timed(func() error { return run(api.CmdUp) })
				downT += timed(func() error { return run(api.CmdDown) })
			},
			func() {
				batchUpT += timed(batchUp)
				batchDownT += timed(batchDown)
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
	b.ReportMetric(ms(upT), "up-ms")
	b.ReportMetric(ms(batchUpT), "ipbatch-up-ms")
	b.ReportMetric(float64(upT)/float64(batchUpT), "up-x-of-ipbatch")
	b.ReportMetric(ms(downT), "down-ms")
	b.ReportMetric(ms(batchDownT), "ipbatch-down-ms")
	b.ReportMetric(float64(downT)/float64(batchDownT), "down-x-of-ipbatch")
	b.ReportMetric(0, "ns/op")
}
