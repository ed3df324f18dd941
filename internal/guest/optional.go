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

// Optional capabilities: ArtefactWriter, Snapshotter, Execer, Consoler,
// Statser, NetnsPather, Finder and PowerSwitch. A driver implements one when its kind has the feature, says so
// in Capabilities, and guards it at compile time
// (var _ guest.Execer = (*Driver)(nil)); callers ask with As, which a proxy
// for a remote driver answers too (it implements every method and
// announces what the remote driver serves).

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

// NetnsPather is a driver whose guests live in a network namespace of
// their own that is not named after them (a docker container's is
// /proc/<pid>/ns/net): the engine's DHCP client takes their lease there.
type NetnsPather interface {
	NetnsPath(ctx context.Context, g *topology.Guest) (string, error)
}

// ErrUnsupported: the guest's kind has not got the feature asked for.
var ErrUnsupported = api.Categorized(api.ErrInvalid, "not supported by this guest kind")

// As returns drv as the optional interface T (Snapshotter, Execer, …) when
// drv implements it and its Capabilities announce it, else an error
// wrapping ErrUnsupported that says what the kind lacks.
func As[T any](drv Driver) (T, error) {
	var zero T
	announced, lacks := drv.Capabilities().announces(&zero)
	if t, ok := drv.(T); ok && announced {
		return t, nil
	}
	return zero, fmt.Errorf("%s guests %s: %w", drv.Kind(), lacks, ErrUnsupported)
}

// announces reports whether c announces the optional interface that p
// points to, and what a driver without it lacks.
func (c Capabilities) announces(p any) (bool, string) {
	switch p.(type) {
	case *Snapshotter:
		return c.Snapshots, "have no snapshots"
	case *ArtefactWriter:
		return c.Artefacts, "write no artefacts"
	case *Execer:
		return c.Exec, "cannot run commands"
	case *Consoler:
		return c.Console, "have no console"
	case *Statser:
		return c.Stats, "report no stats"
	case *NetnsPather:
		return c.NetnsPath, "have no network namespace of their own"
	case *Finder:
		return c.Find, "cannot tell whose their objects are"
	case *PowerSwitch:
		return c.Power, "cannot be stopped and started again"
	}
	return false, fmt.Sprintf("have no optional %T", p)
}
