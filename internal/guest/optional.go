package guest

import (
	"context"
	"errors"
	"fmt"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/topology"
)

// Optional capabilities. A driver implements them when its kind has the
// feature and says so in Capabilities; callers ask with SnapshotterOf and
// ArtefactWriterOf, which a proxy for a remote driver answers too.

// ArtefactWriter is a driver that writes per-guest files at
// generate-artefacts time (libvirt domain XML, cloud-init seed, helper
// scripts), so that they can be read before up and up uses them as written.
type ArtefactWriter interface {
	// WriteArtefacts writes the guest's artefacts into out, the
	// deployment's artefacts folder (<project>/artefacts), which already
	// holds the deployment's SSH key (see sshkey). Every write goes through
	// out, so none follows a symlink out of the folder. Running it again
	// replaces them.
	WriteArtefacts(ctx context.Context, st *topology.State, g *topology.Guest, out *atomicfile.Root, log actlog.Log) error
}

// ErrNoSnapshot: the guest has no snapshot of that name.
var ErrNoSnapshot = errors.New("no such snapshot")

// Snapshot describes one snapshot of a guest: the wire type, since a
// driver's answer goes to the API as it is.
type Snapshot = api.Snapshot

// Snapshotter is a driver whose guests have snapshots. Every method works on
// a guest that is up; an unknown snapshot name is an error wrapping
// ErrNoSnapshot.
type Snapshotter interface {
	CreateSnapshot(ctx context.Context, dep Deployment, g *topology.Guest, name string) (Snapshot, error)
	ListSnapshots(ctx context.Context, dep Deployment, g *topology.Guest) ([]Snapshot, error)
	SnapshotInfo(ctx context.Context, dep Deployment, g *topology.Guest, name string) (Snapshot, error)
	// RestoreSnapshot reverts the guest to the snapshot: disks, and memory
	// when the snapshot holds it.
	RestoreSnapshot(ctx context.Context, dep Deployment, g *topology.Guest, name string) error
	DeleteSnapshot(ctx context.Context, dep Deployment, g *topology.Guest, name string) error
}

// ErrUnsupported: the guest's kind has not got the feature asked for.
var ErrUnsupported = api.Categorized(api.ErrInvalid, "not supported by this guest kind")

// SnapshotterOf returns drv as a Snapshotter when its kind has snapshots,
// else an error wrapping ErrUnsupported.
func SnapshotterOf(drv Driver) (Snapshotter, error) {
	s, ok := drv.(Snapshotter)
	if !ok || !drv.Capabilities().Snapshots {
		return nil, fmt.Errorf("%s guests have no snapshots: %w", drv.Kind(), ErrUnsupported)
	}
	return s, nil
}

// ArtefactWriterOf returns drv as an ArtefactWriter when it writes
// artefacts.
func ArtefactWriterOf(drv Driver) (ArtefactWriter, bool) {
	w, ok := drv.(ArtefactWriter)
	return w, ok && drv.Capabilities().Artefacts
}
