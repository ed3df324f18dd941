// Package guest defines the guest driver interface and the registry of kinds.
// Every kind lives in its own sub-package and is registered explicitly by the
// code that assembles the engine.
package guest

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/testbedos/testbedos/internal/topology"
)

// Log receives the human-readable lines of an action's log.
type Log interface {
	// Printf writes one timestamped line.
	Printf(format string, args ...any)
	// Writer returns a writer whose lines go into the log, each prefixed with
	// prefix. Close flushes a last unterminated line.
	Writer(prefix string) io.WriteCloser
}

// Driver brings guests of one kind to life. Every method must be safe to call
// concurrently for different guests. Destroy must be idempotent: destroying a
// guest that does not exist, or exists only in part, succeeds.
type Driver interface {
	// Kind is the YAML key of this kind (netns, libvirt, docker).
	Kind() string
	// Exists reports whether the guest is already there (up is idempotent).
	Exists(ctx context.Context, g *topology.Guest) (bool, error)
	// Create makes the guest, attaches its interfaces to their bridges and
	// starts it. On error it leaves nothing behind.
	Create(ctx context.Context, st *topology.State, g *topology.Guest, log Log) error
	// RunScript runs the executable script inside the guest, streaming its
	// output into log; a non-zero exit is an error.
	RunScript(ctx context.Context, st *topology.State, g *topology.Guest, script string, log Log) error
	// Destroy stops and removes the guest and everything Create made.
	Destroy(ctx context.Context, st *topology.State, g *topology.Guest, log Log) error
}

// Registry maps kinds to drivers.
type Registry struct {
	drivers map[string]Driver
}

// NewRegistry returns a registry holding the given drivers.
func NewRegistry(drivers ...Driver) *Registry {
	r := &Registry{drivers: make(map[string]Driver, len(drivers))}
	for _, d := range drivers {
		r.drivers[d.Kind()] = d
	}
	return r
}

// Driver returns the driver of kind, or an error naming the known kinds.
func (r *Registry) Driver(kind string) (Driver, error) {
	if d, ok := r.drivers[kind]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("no driver for guest kind %q (have %v)", kind, r.Kinds())
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	kinds := make([]string, 0, len(r.drivers))
	for k := range r.drivers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}
