package actions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// PruneOptions bound the orchestration logs kept.
type PruneOptions struct {
	Store store.Store
	// Dir holds the log files (logs/orchestration).
	Dir string
	// Retention: finished actions older than this go.
	Retention time.Duration
	// MaxCount: at most this many finished actions per deployment stay.
	MaxCount int
	Logger   *slog.Logger
	// Now reads the wall clock and Elapsed the monotonic time since the
	// Pruner was made; tests set them, both default to the real clocks.
	Now     func() time.Time
	Elapsed func() time.Duration
}

// When every finished log is past the retention at once, the clock was
// probably stepped forward: a pass then removes at most half of them and
// keeps the newest jumpKeep logs of each deployment.
const jumpKeep = 3

// clockSlack is how far the wall clock may run from the time this server
// measured itself before it counts as stepped.
const clockSlack = 5 * time.Minute

// Pruner deletes old orchestration logs, one pass at a time. Ages are
// measured on the monotonic clock from the Pruner's creation where the wall
// clock ran ahead of it, so a clock stepped forward while the server runs
// does not age every log at once; and a pass that finds every log past the
// retention (a step before the server started) removes only a bounded share.
type Pruner struct {
	o    PruneOptions
	mu   sync.Mutex
	base time.Time // the wall clock when the Pruner was made
}

// NewPruner returns a Pruner with o.
func NewPruner(o PruneOptions) *Pruner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Elapsed == nil {
		start := time.Now()
		o.Elapsed = func() time.Duration { return time.Since(start) }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pruner{o: o, base: o.Now()}
}

// Prune is one pass of a new Pruner.
func Prune(ctx context.Context, o PruneOptions) (int, error) {
	return NewPruner(o).Prune(ctx)
}

// now is the time ages are measured against: the wall clock, unless it is
// ahead of the base plus the monotonic time elapsed (a step forward).
func (p *Pruner) now() time.Time {
	wall := p.o.Now()
	measured := p.base.Add(p.o.Elapsed())
	if ahead := wall.Sub(measured); ahead > clockSlack {
		p.o.Logger.Warn("the wall clock is ahead of the time this server measured since it started; log ages are measured on the latter",
			"ahead", ahead.Round(time.Second))
		return measured
	}
	return wall
}

type logItem struct {
	deployment string
	uuid       string
	e          api.LogEntry
	rank       int // 0 for the deployment's newest finished action
}

// Prune deletes the log files and index entries of finished actions that are
// older than the retention or beyond the count, and log files that no index
// names any more once they are older than the retention. Running actions are
// never touched. It returns how many log files it removed.
func (p *Pruner) Prune(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.o
	cutoff := p.now().Add(-o.Retention)
	deployments, err := o.Store.Deployments(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune logs: %w", err)
	}
	known := map[string]bool{}
	var errs []error
	var byCount, byAge []logItem
	kept := 0 // finished logs neither too many nor too old
	for _, d := range deployments {
		idx, err := o.Store.LogIndex(ctx, d.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var finished []logItem
		for id, e := range idx {
			known[filepath.Clean(e.LogPath)] = true
			if e.Finished() {
				finished = append(finished, logItem{deployment: d.Name, uuid: id, e: e})
			}
		}
		// Newest first: the first MaxCount within the retention stay.
		slices.SortFunc(finished, func(a, b logItem) int { return b.e.ExecutionTime.Compare(a.e.ExecutionTime) })
		for i, it := range finished {
			it.rank = i
			switch {
			case i >= o.MaxCount:
				byCount = append(byCount, it)
			case !it.e.ExecutionTime.After(cutoff):
				byAge = append(byAge, it)
			default:
				kept++
			}
		}
	}
	jumped := kept == 0 && len(byAge) > 1
	if jumped {
		byAge = p.bound(byAge)
	}
	removed, rmErrs := p.remove(ctx, append(byCount, byAge...))
	errs = append(errs, rmErrs...)
	if jumped {
		// Files of deleted deployments wait for a pass that trusts the clock.
		return removed, errors.Join(errs...)
	}
	// Files of deleted deployments: nothing indexes them any more.
	entries, err := os.ReadDir(o.Dir)
	if err != nil {
		return removed, errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		path := filepath.Join(o.Dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".log") || known[path] {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(path); err == nil {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// bound picks, of logs that all aged out at once, those a pass may remove:
// at most half of them, oldest first, never the newest jumpKeep of a
// deployment.
func (p *Pruner) bound(aged []logItem) []logItem {
	var candidates []logItem
	for _, it := range aged {
		if it.rank >= jumpKeep {
			candidates = append(candidates, it)
		}
	}
	slices.SortFunc(candidates, func(a, b logItem) int { return a.e.ExecutionTime.Compare(b.e.ExecutionTime) })
	out := candidates[:min(len(candidates), len(aged)/2)]
	p.o.Logger.Warn("every orchestration log is past the retention at once: the clock may have been stepped forward; this pass removes only part of them (the newest of each deployment stay)",
		"past_retention", len(aged), "removing", len(out), "retention", p.o.Retention)
	return out
}

// remove deletes the files and index entries of items.
func (p *Pruner) remove(ctx context.Context, items []logItem) (int, []error) {
	var errs []error
	drop := map[string][]string{}
	removed := 0
	for _, it := range items {
		if err := os.Remove(it.e.LogPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		drop[it.deployment] = append(drop[it.deployment], it.uuid)
		removed++
	}
	for name, ids := range drop {
		if err := p.o.Store.DeleteLogEntries(ctx, name, ids); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errs
}
