// Package guest defines the guest driver interface, its optional
// capabilities and the registry of kinds.
// Every kind lives in its own sub-package and is registered explicitly by the
// code that assembles the engine.
package guest

import (
	"context"
	"fmt"
	"sort"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/topology"
)

// Driver brings guests of one kind to life. Every method must be safe to call
// concurrently for different guests. Destroy must be idempotent: destroying a
// guest that does not exist, or exists only in part, succeeds.
//
// A driver sees only the guest's host-neutral description and the
// Deployment it belongs to: it reaches files through dep.Files, never through
// the main host's project folder, so the same driver runs on the main and,
// behind the agent API, on a client host.
type Driver interface {
	// Kind is the YAML key of this kind (netns, libvirt, docker).
	Kind() string
	// Capabilities says which optional interfaces (Snapshotter, …) the
	// driver serves. A proxy for a driver on another host implements every
	// optional method and answers here what the remote driver can do.
	Capabilities() Capabilities
	// Exists reports whether the guest is already there, complete.
	Exists(ctx context.Context, dep Deployment, g *topology.Guest) (bool, error)
	// Create makes the guest, attaches its interfaces to their bridges and
	// starts it. created is false when the guest was there already (for
	// example a defined VM that was only started again): only what Create
	// made may be reverted. On error it leaves nothing of what it made.
	Create(ctx context.Context, dep Deployment, g *topology.Guest, log actlog.Log) (created bool, err error)
	// RunScript runs the executable script (a file of the deployment,
	// reached through dep.Files) inside the guest, streaming its output into
	// log; a non-zero exit is an error.
	RunScript(ctx context.Context, dep Deployment, g *topology.Guest, script string, log actlog.Log) error
	// Destroy stops and removes the guest and everything Create made.
	Destroy(ctx context.Context, dep Deployment, g *topology.Guest, log actlog.Log) error
}

// The package's own implementations, checked when it compiles.
var (
	_ Files      = ProjectFiles{}
	_ MountFiles = ProjectFiles{}
)

// Capabilities are the optional features of a driver; As reads them.
type Capabilities struct {
	// Snapshots: the driver is a Snapshotter.
	Snapshots bool `json:"snapshots"`
	// Artefacts: the driver is an ArtefactWriter.
	Artefacts bool `json:"artefacts"`
	// Exec: the driver is an Execer.
	Exec bool `json:"exec"`
	// Console: the driver is a Consoler.
	Console bool `json:"console"`
	// Stats: the driver is a Statser.
	Stats bool `json:"stats"`
	// NetnsPath: the driver is a NetnsPather.
	NetnsPath bool `json:"netns_path,omitempty"`
	// Find: the driver is a Finder.
	Find bool `json:"find,omitempty"`
	// Power: the driver is a PowerSwitch.
	Power bool `json:"power,omitempty"`
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
