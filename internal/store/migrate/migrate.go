// Package migrate copies deployments and their logs index from one store
// provider to another (testbedos-server migrate --from file --to sqlite).
package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/store/file"
	"github.com/testbedos/testbedos/internal/store/sqlite"
)

// Providers names the store providers Open knows, as TESTBEDOS_DB spells them.
var Providers = []string{"file", "sqlite"}

// Locations is where each provider keeps its records in a data folder
// (config.Server's DeploymentsDir and SQLitePath).
type Locations struct {
	FileDir     string
	DeployedDir string // the file provider's records of what is deployed
	SQLitePath  string
}

// Open opens the provider named provider. A source must already exist:
// migrating from a folder or database that is not there is a mistake, not
// an empty copy.
func Open(provider string, loc Locations, mustExist bool) (store.Store, error) {
	var path string
	switch provider {
	case "file":
		path = loc.FileDir
	case "sqlite":
		path = loc.SQLitePath
	default:
		return nil, fmt.Errorf("store %q: want one of %s", provider, strings.Join(Providers, ", "))
	}
	if mustExist {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%s store: %w", provider, err)
		}
	}
	if provider == "file" {
		return file.Open(path, loc.DeployedDir)
	}
	return sqlite.Open(path)
}

// Options change how Copy treats the destination.
type Options struct {
	// Overwrite replaces a deployment the destination already has, with
	// its whole logs index, by the source's. Without it Copy refuses to
	// start when any name is taken.
	Overwrite bool
}

// Report counts what Copy wrote.
type Report struct {
	Deployments int // deployments written to the destination
	Overwritten int // of those, how many replaced an existing one
	LogEntries  int // log index entries written
	Records     int // records of what is deployed written
}

func (r Report) String() string {
	s := fmt.Sprintf("copied %s and %s", count(r.Deployments, "deployment"), count(r.LogEntries, "log entry"))
	if r.Records > 0 {
		s += fmt.Sprintf(", %s of what is deployed", count(r.Records, "record"))
	}
	if r.Overwritten > 0 {
		s += fmt.Sprintf(" (%d overwritten)", r.Overwritten)
	}
	return s
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if w, ok := strings.CutSuffix(what, "y"); ok {
		return fmt.Sprintf("%d %sies", n, w)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Copy copies every deployment and every log entry of from into to, and
// refuses, before writing anything, when to already has a deployment of the
// same name.
func Copy(ctx context.Context, from, to store.Store) (Report, error) {
	return Options{}.Copy(ctx, from, to)
}

// Copy copies every deployment and every log entry of from into to. The
// stores have no transaction in common: when it fails half way the report
// says what was written, and running it again with Overwrite finishes it.
func (o Options) Copy(ctx context.Context, from, to store.Store) (Report, error) {
	var r Report
	src, err := from.Deployments(ctx)
	if err != nil {
		return r, fmt.Errorf("migrate: read source: %w", err)
	}
	dst, err := to.Deployments(ctx)
	if err != nil {
		return r, fmt.Errorf("migrate: read destination: %w", err)
	}
	existing := map[string]bool{}
	for _, d := range dst {
		existing[d.Name] = true
	}
	var taken []string
	for _, d := range src {
		if existing[d.Name] {
			taken = append(taken, d.Name)
		}
	}
	if len(taken) > 0 && !o.Overwrite {
		return r, fmt.Errorf("migrate: the destination already has deployments %s: %w (nothing was copied; --overwrite replaces them)",
			strings.Join(taken, ", "), store.ErrExists)
	}

	for _, d := range src {
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("migrate: %w", err)
		}
		idx, err := from.LogIndex(ctx, d.Name)
		if err != nil {
			return r, fmt.Errorf("migrate: read logs of %q: %w", d.Name, err)
		}
		if existing[d.Name] {
			// Delete, not update: the destination's own log entries of
			// that deployment must not survive next to the source's.
			if err := to.DeleteDeployment(ctx, d.Name, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
				return r, fmt.Errorf("migrate: overwrite %q: %w", d.Name, err)
			}
			r.Overwritten++
		}
		if err := to.CreateDeployment(ctx, d); err != nil {
			return r, fmt.Errorf("migrate: write %q: %w", d.Name, err)
		}
		r.Deployments++
		uuids := make([]string, 0, len(idx))
		for u := range idx {
			uuids = append(uuids, u)
		}
		slices.Sort(uuids) // a failure half way is then reproducible
		for _, u := range uuids {
			e := idx[u]
			// The index an entry sits in is its deployment; the original
			// server's entries do not name it.
			e.Deployment = d.Name
			if err := to.PutLogEntry(ctx, u, e); err != nil {
				return r, fmt.Errorf("migrate: write action %q of %q: %w", u, d.Name, err)
			}
			r.LogEntries++
		}
	}
	// The records of what is deployed: without them the destination could
	// not bring down what the source's server made.
	names, err := from.DeployedNames(ctx)
	if err != nil {
		return r, fmt.Errorf("migrate: read deployed records: %w", err)
	}
	for _, n := range names {
		rec, err := from.Deployed(ctx, n)
		if err != nil {
			return r, fmt.Errorf("migrate: read deployed record of %q: %w", n, err)
		}
		if err := to.PutDeployed(ctx, n, rec); err != nil {
			return r, fmt.Errorf("migrate: write deployed record of %q: %w", n, err)
		}
		r.Records++
	}
	return r, nil
}
