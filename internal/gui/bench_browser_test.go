package gui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
)

// feedExecutor is an engine whose action writes the lines the benchmark
// feeds it, until the feed closes.
type feedExecutor struct{ lines chan string }

func (f *feedExecutor) Check(context.Context, api.Deployment, api.DeploymentState, api.Command) error {
	return nil
}

func (f *feedExecutor) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	log.Printf("ready")
	for {
		select {
		case <-ctx.Done():
			return prev, ctx.Err()
		case l, ok := <-f.lines:
			if !ok {
				return api.StateIsUp, nil
			}
			log.Printf("%s", l)
		}
	}
}

// BenchmarkLogLineToBrowser is the delay from a line written to an action's
// log to that line showing in the deployment page of a real chromium (over
// the log stream websocket), p50 and p99 over 100 lines per iteration.
func BenchmarkLogLineToBrowser(b *testing.B) {
	feed := &feedExecutor{lines: make(chan string)}
	s := startReal(b, feed)
	ctx := browser(b)
	login(b, ctx, s)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(small), 0o644); err != nil {
		b.Fatal(err)
	}
	if code := s.call(b, "POST", "/api/deployments", api.NewDeployment{Name: "bench", ProjectLocation: dir}, nil); code != 201 {
		b.Fatalf("create: %d", code)
	}
	var acc api.ActionAccepted
	if code := s.call(b, "POST", "/api/deployments/bench/action", map[string]any{"command": "up"}, &acc); code != 202 {
		b.Fatalf("action: %d", code)
	}
	defer close(feed.lines)
	step(b, ctx, "open the page", 30*time.Second,
		chromedp.Navigate(s.base+"/deployments/bench"),
		chromedp.WaitVisible(chromedp.CSS("#log .line")),
		// Each line's delay: now in the page less the time written into it.
		evalStep(`window.__lat = []; new MutationObserver((ms) => {
			const now = (performance.timeOrigin + performance.now()) * 1000;
			for (const m of ms) for (const n of m.addedNodes) {
				const x = /lat=(\d+)/.exec(n.textContent || "");
				if (x) window.__lat.push((now - Number(x[1])) / 1000);
			}
		}).observe(document.querySelector("#log"), {childList: true})`),
	)
	const perIter = 100
	b.ResetTimer()
	for i := 0; i < b.N*perIter; i++ {
		feed.lines <- fmt.Sprintf("line %d lat=%d", i, time.Now().UnixMicro())
		time.Sleep(10 * time.Millisecond)
	}
	var lat []float64
	deadline := time.Now().Add(30 * time.Second)
	for len(lat) < b.N*perIter && time.Now().Before(deadline) {
		lat = eval[[]float64](b, ctx, `window.__lat`)
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	if len(lat) != b.N*perIter {
		b.Fatalf("%d of %d lines reached the page", len(lat), b.N*perIter)
	}
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "p50_ms")
	b.ReportMetric(lat[(len(lat)*99)/100], "p99_ms")
}
