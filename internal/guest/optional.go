package guest

import (
	"context"
	"errors"
	"time"

	"github.com/testbedos/testbedos/internal/topology"
)

// Optional capabilities. A driver implements them when its kind has the
// feature; callers find out with a type assertion.

// ArtefactWriter is a driver that writes per-guest files at
// generate-artefacts time (libvirt domain XML, cloud-init seed, helper
// scripts), so that they can be read before up and up uses them as written.
type ArtefactWriter interface {
	// WriteArtefacts writes the guest's artefacts under dir, the
	// deployment's artefacts folder (<project>/artefacts), which already
	// holds the deployment's SSH key (see sshkey). Running it again
	// replaces them.
	WriteArtefacts(ctx context.Context, st *topology.State, g *topology.Guest, dir string, log Log) error
}

// ErrNoSnapshot: the guest has no snapshot of that name.
var ErrNoSnapshot = errors.New("no such snapshot")

// Snapshot describes one snapshot of a guest.
type Snapshot struct {
	Name        string    `json:"name"`
	Created     time.Time `json:"created"`
	State       string    `json:"state"` // the guest's state when taken: running, shutoff, …
	Parent      string    `json:"parent,omitempty"`
	Current     bool      `json:"current"`
	Description string    `json:"description,omitempty"`
	// Memory says whether the guest's memory is part of the snapshot
	// (restoring it resumes the running guest where it was).
	Memory bool `json:"memory"`
	// Disks lists the disks the snapshot covers (vda, …).
	Disks []string `json:"disks,omitempty"`
}

// Snapshotter is a driver whose guests have snapshots. Every method works on
// a guest that is up; an unknown snapshot name is an error wrapping
// ErrNoSnapshot.
type Snapshotter interface {
	CreateSnapshot(ctx context.Context, st *topology.State, g *topology.Guest, name string) (Snapshot, error)
	ListSnapshots(ctx context.Context, st *topology.State, g *topology.Guest) ([]Snapshot, error)
	SnapshotInfo(ctx context.Context, st *topology.State, g *topology.Guest, name string) (Snapshot, error)
	// RestoreSnapshot reverts the guest to the snapshot: disks, and memory
	// when the snapshot holds it.
	RestoreSnapshot(ctx context.Context, st *topology.State, g *topology.Guest, name string) error
	DeleteSnapshot(ctx context.Context, st *topology.State, g *topology.Guest, name string) error
}
