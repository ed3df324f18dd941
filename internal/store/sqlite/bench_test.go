package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/store/file"
)

// BenchmarkProviders puts the file and SQLite providers side by side:
//
//	go test -run '^$' -bench Providers ./internal/store/sqlite/
//
// PutLogEntry replaces entries of a deployment whose index holds 100 (the
// file provider rewrites the whole index on every put, so its cost grows
// with the index); Deployment reads one record.
func BenchmarkProviders(b *testing.B) {
	providers := []struct {
		name string
		open func(dir string) (store.Store, error)
	}{
		{"file", func(dir string) (store.Store, error) {
			return file.Open(filepath.Join(dir, "deployments"), filepath.Join(dir, "deployed"))
		}},
		{"sqlite", func(dir string) (store.Store, error) { return Open(filepath.Join(dir, "testbedos.db")) }},
	}
	const indexSize = 100
	for _, p := range providers {
		ctx := context.Background()
		setup := func(b *testing.B) store.Store {
			s, err := p.open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			if err := s.CreateDeployment(ctx, api.Deployment{Name: "bench", ProjectLocation: "/srv/bench"}); err != nil {
				b.Fatal(err)
			}
			for i := range indexSize {
				if err := s.PutLogEntry(ctx, fmt.Sprintf("u%d", i), entry()); err != nil {
					b.Fatal(err)
				}
			}
			return s
		}
		b.Run("PutLogEntry/"+p.name, func(b *testing.B) {
			s := setup(b)
			e := entry()
			i := 0
			for b.Loop() {
				if err := s.PutLogEntry(ctx, fmt.Sprintf("u%d", i%indexSize), e); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("Deployment/"+p.name, func(b *testing.B) {
			s := setup(b)
			for b.Loop() {
				if _, err := s.Deployment(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func entry() api.LogEntry {
	code, dur := 0, int64(1234)
	end := api.StateIsUp
	return api.LogEntry{
		Deployment: "bench", LogPath: "/var/lib/testbedos/logs/orchestration/2026-11-25T10:00:00Z-bench.log",
		ExecutionTime: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Command: api.Command{Name: api.CmdUp},
		ErrorCode: &code, EndState: &end, DurationMS: &dur,
	}
}
