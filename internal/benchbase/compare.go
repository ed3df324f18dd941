package benchbase

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Lab is the kvm-compose.yaml of n netns guests g0… spread round-robin
// over the given number of switches sw0…, switch k the subnet
// 10.(124+k).0.0/16: the guests a benchmark brings up through the engine
// or the server, to measure against its Floor.
func Lab(n, switches int) string {
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
	return y.String()
}

// FloorOver is the Floor of n guests round-robin over the given number of
// bridges, every name starting with prefix.
func FloorOver(prefix string, n, bridges int) *Floor {
	p := Plan{Prefix: prefix, N: n}
	for k := range bridges {
		p.Bridges = append(p.Bridges, fmt.Sprintf("%sbr%d", prefix, k))
	}
	return NewFloor(p)
}

// UpDown is what a benchmark times: an up and a down.
type UpDown struct{ Up, Down func() error }

// Steps is the floor's up and down as an UpDown.
func (f *Floor) Steps(ctx context.Context) UpDown {
	return UpDown{Up: func() error { return f.Up(ctx) }, Down: func() error { return f.Down(ctx) }}
}

// Compare times subject's up and down against the floor's in each of b.N
// iterations, alternating which goes first so neither always pays for the
// other's background clean-up; after the subject's down, check (when not
// nil) runs untimed. It reports both and their ratio:
//
//	up-ms, ipbatch-up-ms, up-x-of-ipbatch
//	down-ms, ipbatch-down-ms, down-x-of-ipbatch
func Compare(b *testing.B, subject, floor UpDown, check func()) {
	var upT, downT, floorUpT, floorDownT time.Duration
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		steps := []func(){
			func() {
				upT += Timed(b, subject.Up)
				downT += Timed(b, subject.Down)
				if check != nil {
					check()
				}
			},
			func() {
				floorUpT += Timed(b, floor.Up)
				floorDownT += Timed(b, floor.Down)
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
	b.ReportMetric(ms(floorUpT), "ipbatch-up-ms")
	b.ReportMetric(float64(upT)/float64(floorUpT), "up-x-of-ipbatch")
	b.ReportMetric(ms(downT), "down-ms")
	b.ReportMetric(ms(floorDownT), "ipbatch-down-ms")
	b.ReportMetric(float64(downT)/float64(floorDownT), "down-x-of-ipbatch")
	b.ReportMetric(0, "ns/op")
}

// Timed runs step with the benchmark timer on, then lets the kernel finish
// freeing namespaces in the background, so that the next step does not
// pay for this one.
func Timed(b *testing.B, step func() error) time.Duration {
	b.Helper()
	b.StartTimer()
	start := time.Now()
	err := step()
	took := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	return took
}
