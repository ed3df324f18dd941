package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// benchLab makes and brings up a deployment of n netns guests on one
// switch, with extra appended to its kvm-compose.yaml; it is brought down
// when the benchmark ends.
func netnsBenchLab(b *testing.B, s *server, prefix string, n int, extra string) string {
	ctx := context.Background()
	var y strings.Builder
	y.WriteString("machines:\n")
	for i := range n {
		fmt.Fprintf(&y, "  - name: g%d\n    network: [{switch: sw0, ip: 10.124.%d.%d}]\n", i, (i+1)>>8, (i+1)&0xff)
	}
	y.WriteString("network:\n  switches:\n    sw0: {subnet: 10.124.0.0/16}\n" + extra)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	name := uniqueName(prefix)
	if _, err := s.c.CreateDeployment(ctx, name, dir); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		benchAction(b, s, name, api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
		nettest.RemoveAll(netnsPrefix(name))
	})
	for _, c := range []api.CommandName{api.CmdGenerateArtefacts, api.CmdUp} {
		if _, err := benchAction(b, s, name, api.ActionRequest{Command: api.Command{Name: c}}); err != nil {
			b.Fatal(err)
		}
	}
	return name
}

func benchAction(b *testing.B, s *server, name string, req api.ActionRequest) ([]string, error) {
	ctx := context.Background()
	id, err := s.c.Action(ctx, name, req)
	if err != nil {
		return nil, err
	}
	var lines []string
	o, err := s.c.Follow(ctx, id, func(l string) { lines = append(lines, l) })
	if err == nil && o.ErrorCode != 0 {
		err = fmt.Errorf("%s failed: %+v\n%s", req.Command, o, strings.Join(lines, "\n"))
	}
	return lines, err
}

var driftLine = regexp.MustCompile(`drift p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms`)

// BenchmarkTimelineDrift runs a timeline of 100 link changes (down and up
// every 20 ms) through the server and reports the drift of the changes
// from their planned times, as the action's log has it:
//
//	drift-p50-ms, drift-p99-ms, drift-max-ms
//
//	go test -run '^$' -bench TimelineDrift -benchtime 1x ./test/e2e/
func BenchmarkTimelineDrift(b *testing.B) {
	nettest.RequireRoot(b)
	s := startServer(b)
	name := netnsBenchLab(b, s, "tld", 2, `timeline:
  repeat: 50
  period: 40ms
  changes:
    - {at: 0ms, guest: g1, interface: eth0, link: down}
    - {at: 20ms, guest: g1, interface: eth0, link: up}
`)
	var p50, p99, mx float64
	b.ResetTimer()
	for range b.N {
		lines, err := benchAction(b, s, name, api.ActionRequest{Command: api.Command{Name: api.CmdTimeline}})
		if err != nil {
			b.Fatal(err)
		}
		if os.Getenv("TBOS_BENCH_LOG") != "" {
			b.Log(strings.Join(lines, "\n"))
		}
		m := driftLine.FindStringSubmatch(strings.Join(lines, "\n"))
		if m == nil {
			b.Fatalf("no drift line in:\n%s", strings.Join(lines, "\n"))
		}
		a, _ := strconv.ParseFloat(m[1], 64)
		c, _ := strconv.ParseFloat(m[2], 64)
		d, _ := strconv.ParseFloat(m[3], 64)
		p50, p99, mx = max(p50, a), max(p99, c), max(mx, d)
	}
	b.ReportMetric(p50, "drift-p50-ms")
	b.ReportMetric(p99, "drift-p99-ms")
	b.ReportMetric(mx, "drift-max-ms")
}

// BenchmarkFanoutExec runs a command in 100 netns guests with one fan-out
// exec, and the same as 100 sequential execs, and reports both, for
// `true` (the cost of an exec: CPU-bound, so 2 cores bound the gain) and
// `sleep 0.05` (a command that waits, where running at once pays):
//
//	fanout-ms, sequential-ms, sequential-x-of-fanout
//
//	go test -run '^$' -bench FanoutExec -benchtime 1x ./test/e2e/
func BenchmarkFanoutExec(b *testing.B) {
	nettest.RequireRoot(b)
	s := startServer(b)
	const n = 100
	name := netnsBenchLab(b, s, "fx", n, "")
	for _, argv := range [][]string{{"true"}, {"sleep", "0.05"}} {
		b.Run("cmd="+strings.Join(argv, "_"), func(b *testing.B) { benchFanout(b, s, name, n, argv) })
	}
}

func benchFanout(b *testing.B, s *server, name string, n int, argv []string) {
	ctx := context.Background()
	var fan, seq time.Duration
	for range b.N {
		start := time.Now()
		res, err := s.c.ExecAll(ctx, name, api.FanoutExecRequest{Command: argv})
		if err != nil || len(res.Results) != n {
			b.Fatal(err, len(res.Results))
		}
		for _, r := range res.Results {
			if r.ExitCode != 0 {
				b.Fatalf("%+v", r)
			}
		}
		fan += time.Since(start)
		start = time.Now()
		for i := range n {
			r, err := s.c.Exec(ctx, name, fmt.Sprintf("g%d", i), api.ExecRequest{Command: argv})
			if err != nil || r.ExitCode != 0 {
				b.Fatal(err, r)
			}
		}
		seq += time.Since(start)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(fan), "fanout-ms")
	b.ReportMetric(ms(seq), "sequential-ms")
	b.ReportMetric(float64(seq)/float64(fan), "sequential-x-of-fanout")
}
