package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
)

// talker is an executor whose action writes one line per value sent on
// lines, stamped with the send time, until lines is closed.
type talker struct {
	lines chan int
	sent  sync.Map // seq -> time.Time
}

func (t *talker) Check(context.Context, api.Deployment, api.DeploymentState, api.Command) error {
	return nil
}

func (t *talker) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	for seq := range t.lines {
		t.sent.Store(seq, time.Now())
		log.Printf("line %d", seq)
	}
	return api.StateIsUp, nil
}

// BenchmarkFollowLatency measures how long a written log line takes to reach
// 100 websocket followers (real HTTP, real websockets), next to the
// baseline of the original design: followers polling the file every 100 ms.
func BenchmarkFollowLatency(b *testing.B) {
	const followers = 100
	for _, mode := range []string{"websocket", "poll-100ms"} {
		b.Run(fmt.Sprintf("%s/followers=%d", mode, followers), func(b *testing.B) {
			dir := b.TempDir()
			cfg := config.Server{DataDir: dir, Listen: "127.0.0.1:0", DB: "file",
				HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10}
			tk := &talker{lines: make(chan int)}
			s, err := New(context.Background(), Options{Config: cfg, Executor: tk})
			if err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			c, _ := client.New(ts.URL)
			project := filepath.Join(dir, "p")
			os.MkdirAll(project, 0o755)
			os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), nil, 0o644)
			ctx := context.Background()
			if _, err := c.CreateDeployment(ctx, "bench", project); err != nil {
				b.Fatal(err)
			}
			id, err := c.Action(ctx, "bench", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
			if err != nil {
				b.Fatal(err)
			}
			entry, _ := c.LogEntry(ctx, id)

			var mu sync.Mutex
			var lat []time.Duration
			got := make(chan struct{}, followers)
			record := func(line string) {
				_, after, ok := strings.Cut(line, "line ")
				if !ok {
					return
				}
				seq, _ := strconv.Atoi(after)
				if t0, ok := tk.sent.Load(seq); ok {
					mu.Lock()
					lat = append(lat, time.Since(t0.(time.Time)))
					mu.Unlock()
					got <- struct{}{}
				}
			}
			var wg sync.WaitGroup
			for range followers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if mode == "websocket" {
						c.Follow(ctx, id, record)
						return
					}
					pollFile(entry.LogPath, 100*time.Millisecond, s.hub.Live, record)
				}()
			}
			time.Sleep(200 * time.Millisecond) // let every follower connect
			b.ResetTimer()
			for i := range b.N {
				tk.lines <- i
				for range followers {
					<-got
				}
			}
			b.StopTimer()
			close(tk.lines)
			wg.Wait()
			s.Close(ctx)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// pollFile is the polling follower of the original design: re-read the file
// every interval and hand out the new lines, until the log is no longer live.
func pollFile(path string, every time.Duration, live func(string) bool, onLine func(string)) {
	seen := 0
	for {
		stillLive := live(path)
		data, _ := os.ReadFile(path)
		lines := strings.Split(string(data), "\n")
		for ; seen < len(lines)-1; seen++ {
			onLine(lines[seen])
		}
		if !stillLive {
			return
		}
		time.Sleep(every)
	}
}
