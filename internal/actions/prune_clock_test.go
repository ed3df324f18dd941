package actions

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

// addLogs writes n finished actions of deployment dep, one an hour back
// from now, and returns their uuids newest first.
func addLogs(t *testing.T, f *fixture, dep string, now time.Time, n int) []string {
	t.Helper()
	code := 0
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%02d", dep, i)
		path := filepath.Join(f.hub.Dir(), id+".log")
		os.WriteFile(path, []byte("x\n"), 0o644)
		e := api.LogEntry{Deployment: dep, LogPath: path, ExecutionTime: now.Add(-time.Duration(i+1) * time.Hour), ErrorCode: &code}
		if err := f.store.PutLogEntry(context.Background(), id, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func indexed(t *testing.T, f *fixture, dep string) int {
	t.Helper()
	idx, err := f.store.LogIndex(context.Background(), dep)
	if err != nil {
		t.Fatal(err)
	}
	return len(idx)
}

// TestPruneClockSteppedBeforeStart: the server starts with the clock a year
// ahead, so every log looks past the retention. Each pass removes at most
// half of what is past it, and the newest three of each deployment stay.
func TestPruneClockSteppedBeforeStart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.store.CreateDeployment(ctx, api.Deployment{Name: "two", ProjectLocation: t.TempDir()})
	written := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ids := addLogs(t, f, "dep", written, 11)
	addLogs(t, f, "two", written, 2)
	stepped := written.AddDate(1, 0, 0)
	o := PruneOptions{Store: f.store, Dir: f.hub.Dir(), Retention: 24 * time.Hour, MaxCount: 100,
		Now: func() time.Time { return stepped }}

	// 13 past the retention: 6 go (of dep's oldest 8); then 7: 3 could go,
	// but only 2 of dep are not among its newest three.
	want := []int{5, 3, 3}
	for pass, w := range want {
		if _, err := Prune(ctx, o); err != nil {
			t.Fatal(err)
		}
		if pass == 0 {
			// The suspicious pass says so in the server log.
			logs := &syncBuffer{}
			o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			defer func() {
				if !strings.Contains(logs.String(), "the clock may have been stepped forward") {
					t.Errorf("no warning logged:\n%s", logs)
				}
			}()
		}
		if got := indexed(t, f, "dep"); got != w {
			t.Fatalf("pass %d left %d logs of dep, want %d", pass, got, w)
		}
	}
	if got := indexed(t, f, "two"); got != 2 {
		t.Fatalf("deployment two kept %d logs, want both", got)
	}
	idx, _ := f.store.LogIndex(ctx, "dep")
	for _, id := range ids[:3] {
		if _, ok := idx[id]; !ok {
			t.Fatalf("%s, one of the newest three, was removed", id)
		}
	}
}

// TestPruneClockSteppedWhileRunning: the wall clock jumps a year ahead
// between two passes of one Pruner while an hour passes on the monotonic
// clock: ages follow the latter and nothing goes.
func TestPruneClockSteppedWhileRunning(t *testing.T) {
	f := newFixture(t)
	written := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	addLogs(t, f, "dep", written, 6)
	wall, elapsed := written, time.Duration(0)
	p := NewPruner(PruneOptions{Store: f.store, Dir: f.hub.Dir(), Retention: 24 * time.Hour, MaxCount: 100,
		Now: func() time.Time { return wall }, Elapsed: func() time.Duration { return elapsed }})
	ctx := context.Background()
	if n, err := p.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("first pass removed %d, %v", n, err)
	}
	wall, elapsed = written.AddDate(1, 0, 0), time.Hour
	if n, err := p.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("pass after the step removed %d, %v; want none", n, err)
	}
	// Time that really passes ages the logs as before; one recent action
	// means the clock is trusted and every old log goes at once.
	elapsed = 20*time.Hour + 30*time.Minute
	code := 0
	path := filepath.Join(f.hub.Dir(), "recent.log")
	os.WriteFile(path, nil, 0o644)
	f.store.PutLogEntry(ctx, "recent", api.LogEntry{Deployment: "dep", LogPath: path, ExecutionTime: written.Add(19 * time.Hour), ErrorCode: &code})
	if n, err := p.Prune(ctx); err != nil || n != 3 {
		t.Fatalf("pass 20 h later removed %d, %v; want the 3 logs then older than 24 h", n, err)
	}
}
