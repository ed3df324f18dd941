package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

var (
	loadDuration = flag.Duration("load-duration", 30*time.Second, "how long BenchmarkLoad runs")
	loadClients  = flag.Int("load-clients", 50, "concurrent clients of BenchmarkLoad")
)

// BenchmarkLoad runs the real server binary under concurrent clients over
// TCP with the token, mixing every route: list, create, get, put, actions
// (generate-artefacts and clear-artefacts through the real engine), cancel,
// logs, log text, live log streams, state, status, metrics and delete. It
// reports p50/p99 latency and the errors by kind; 5xx must stay at zero.
//
//	go test -run '^$' -bench Load -benchtime 1x ./test/e2e/
func BenchmarkLoad(b *testing.B) {
	for range b.N {
		s := startServer(b)
		b.ResetTimer()
		res := runLoad(b, s, *loadClients, *loadDuration)
		b.StopTimer()
		b.ReportMetric(float64(res.requests)/loadDuration.Seconds(), "req/s")
		b.ReportMetric(float64(res.p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(res.p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(res.failed), "5xx")
	}
}

// TestConcurrentClients runs the same mix briefly against the race-enabled
// server: no 5xx, no deadlock, every record whole afterwards.
func TestConcurrentClients(t *testing.T) {
	s := startServer(t)
	runLoad(t, s, 20, 5*time.Second)
	// The actions started last finish on their own; one that never does is
	// stuck.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		list, err := s.c.Deployments(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, d := range list {
			if d.State.Is(api.StateRunning) {
				running++
			}
		}
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deployments still running 30 s after the load ended", running)
		}
	}
	s.stop(t)
	s.start(t)
	assertRecordsIntact(t, s)
}

type loadResult struct {
	requests, failed int
	p50, p99         time.Duration
}

type loadStats struct {
	mu       sync.Mutex
	lat      []time.Duration
	byStatus map[int]int
	failures []string
}

func (s *loadStats) add(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat = append(s.lat, d)
	code := client.StatusOf(err)
	if err != nil && code == 0 {
		code = -1 // no answer at all
	}
	s.byStatus[code]++
	if code >= 500 || code == -1 {
		s.failures = append(s.failures, err.Error())
	}
}

func runLoad(b testing.TB, s *server, clients int, duration time.Duration) loadResult {
	dir := b.TempDir()
	base := s.tcpURL(b)
	token, _ := os.ReadFile(filepath.Join(s.dataDir, "config", "token"))
	c, _ := client.New(base, client.WithToken(string(token)))
	proj := filepath.Join(dir, "p")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "kvm-compose.yaml"), []byte("machines:\n  - name: a\n    network: [{switch: sw0, ip: 10.8.0.2}]\nnetwork:\n  switches:\n    sw0: {subnet: 10.8.0.0/24}\n"), 0o644)

	st := &loadStats{byStatus: map[int]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	timed := func(fn func() error) {
		start := time.Now()
		err := fn()
		if ctx.Err() != nil {
			return // the run ended under this request
		}
		st.add(time.Since(start), err)
	}
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				name := fmt.Sprintf("load-%d", r.IntN(20))
				switch op := r.IntN(14); op {
				case 0:
					timed(func() error { _, err := c.Deployments(ctx); return err })
				case 1:
					timed(func() error { _, err := c.CreateDeployment(ctx, name, proj); return err })
				case 2:
					timed(func() error { _, err := c.Deployment(ctx, name); return err })
				case 3:
					timed(func() error { _, err := c.UpdateDeployment(ctx, name, proj); return err })
				case 4, 5:
					what := api.CmdGenerateArtefacts
					if op == 5 {
						what = api.CmdClearArtefacts
					}
					timed(func() error { _, err := c.Action(ctx, name, cmd(what)); return err })
				case 6:
					timed(func() error { _, err := c.Cancel(ctx, name, ""); return err })
				case 7:
					timed(func() error { _, err := c.Logs(ctx, name); return err })
				case 8, 9:
					var id string
					timed(func() error {
						d, err := c.Deployment(ctx, name)
						if err == nil && d.LastActionUUID != nil {
							id = *d.LastActionUUID
						}
						return err
					})
					if id == "" {
						continue
					}
					if op == 8 {
						timed(func() error { _, err := c.LogText(ctx, id); return err })
					} else {
						timed(func() error { _, err := c.Follow(ctx, id, func(string) {}); return err })
					}
				case 10:
					timed(func() error { _, err := c.State(ctx, name); return err })
				case 11:
					timed(func() error { _, err := c.Status(ctx); return err })
				case 12:
					timed(func() error {
						req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
						req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							return err
						}
						resp.Body.Close()
						if resp.StatusCode != 200 {
							return &client.Error{Status: resp.StatusCode, Message: "metrics"}
						}
						return nil
					})
				case 13:
					timed(func() error { return c.DeleteDeployment(ctx, name, true) })
				}
			}
		}()
	}
	waited := make(chan struct{})
	go func() {
		wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(duration + time.Minute):
		b.Fatal("clients still blocked a minute after the end: deadlock?")
	}
	slices.Sort(st.lat)
	n := len(st.lat)
	if n == 0 {
		b.Fatal("no requests completed")
	}
	p50, p99 := st.lat[n/2], st.lat[n*99/100]
	fivexx := 0
	for code, k := range st.byStatus {
		if code >= 500 || code == -1 {
			fivexx += k
		}
	}
	b.Logf("%d clients, %v: %d requests, p50 %v, p99 %v, by status %v", clients, duration, n, p50, p99, st.byStatus)
	if fivexx > 0 {
		b.Errorf("%d requests failed with 5xx or no answer, e.g. %q", fivexx, st.failures[:min(3, len(st.failures))])
	}
	return loadResult{requests: n, failed: fivexx, p50: p50, p99: p99}
}
