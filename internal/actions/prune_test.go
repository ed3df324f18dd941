package actions

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

func TestPrune(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dir := f.hub.Dir()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	code := 0
	add := func(id string, age time.Duration, finished bool) string {
		path := filepath.Join(dir, id+".log")
		os.WriteFile(path, []byte("x\n"), 0o644)
		e := api.LogEntry{Deployment: "dep", LogPath: path, ExecutionTime: now.Add(-age)}
		if finished {
			e.ErrorCode = &code
		}
		if err := f.store.PutLogEntry(ctx, id, e); err != nil {
			t.Fatal(err)
		}
		return path
	}
	old := add("old", 40*24*time.Hour, true)
	oldRunning := add("old-running", 40*24*time.Hour, false)
	var recent []string
	for i := range 5 {
		recent = append(recent, add(string(rune('a'+i)), time.Duration(i+1)*time.Hour, true))
	}
	orphanOld := filepath.Join(dir, "orphan-old.log")
	os.WriteFile(orphanOld, nil, 0o644)
	os.Chtimes(orphanOld, now.Add(-60*24*time.Hour), now.Add(-60*24*time.Hour))
	orphanNew := filepath.Join(dir, "orphan-new.log")
	os.WriteFile(orphanNew, nil, 0o644)
	os.Chtimes(orphanNew, now, now)

	n, err := Prune(ctx, PruneOptions{Store: f.store, Dir: dir, Retention: 30 * 24 * time.Hour, MaxCount: 3, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// old (age), d and e (beyond the 3 newest), orphan-old.
	if n != 4 {
		t.Fatalf("removed %d files, want 4", n)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	for _, p := range []string{old, recent[3], recent[4], orphanOld} {
		if exists(p) {
			t.Errorf("%s was kept", p)
		}
	}
	for _, p := range []string{oldRunning, recent[0], recent[1], recent[2], orphanNew} {
		if !exists(p) {
			t.Errorf("%s was removed", p)
		}
	}
	idx, _ := f.store.LogIndex(ctx, "dep")
	if len(idx) != 4 {
		t.Fatalf("index has %d entries, want 4 (3 recent + the running one)", len(idx))
	}
	if _, ok := idx["old-running"]; !ok {
		t.Fatal("a running action's entry was pruned")
	}
}
