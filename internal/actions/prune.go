package actions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	Now      func() time.Time
}

// Prune deletes the log files and index entries of finished actions that are
// older than the retention or beyond the count, and log files that no index
// names any more once they are older than the retention. Running actions are
// never touched. It returns how many log files it removed.
func Prune(ctx context.Context, o PruneOptions) (int, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	cutoff := now().Add(-o.Retention)
	deployments, err := o.Store.Deployments(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune logs: %w", err)
	}
	known := map[string]bool{}
	removed := 0
	var errs []error
	for _, d := range deployments {
		idx, err := o.Store.LogIndex(ctx, d.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		type item struct {
			uuid string
			e    api.LogEntry
		}
		var finished []item
		for id, e := range idx {
			known[filepath.Clean(e.LogPath)] = true
			if e.Finished() {
				finished = append(finished, item{id, e})
			}
		}
		// Newest first: the first MaxCount within the retention stay.
		slices.SortFunc(finished, func(a, b item) int { return b.e.ExecutionTime.Compare(a.e.ExecutionTime) })
		var drop []string
		for i, it := range finished {
			if i < o.MaxCount && it.e.ExecutionTime.After(cutoff) {
				continue
			}
			if err := os.Remove(it.e.LogPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			drop = append(drop, it.uuid)
			removed++
		}
		if len(drop) > 0 {
			if err := o.Store.DeleteLogEntries(ctx, d.Name, drop); err != nil {
				errs = append(errs, err)
			}
		}
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
