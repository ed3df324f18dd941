package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

var (
	// ErrNotFound: the deployment has no such guest, or the guest no such
	// snapshot.
	ErrNotFound = api.Categorized(api.ErrNotFound, "not found")
	// ErrUnsupported: the guest's kind does not have the feature asked for
	// (snapshots of a namespace).
	ErrUnsupported = guest.ErrUnsupported
)

// Snapshot runs a snapshot sub-command (create, restore, delete) on one guest
// and writes what it does into the action log. Reading snapshots is not an
// action: see ListSnapshots and SnapshotInfo.
func (e *Engine) Snapshot(ctx context.Context, d api.Deployment, opts api.SnapshotOptions, log actlog.Log) error {
	t, err := e.snapshotTarget(d, opts.Guest)
	if err != nil {
		return err
	}
	g := t.guest
	switch opts.SubCommand {
	case "create":
		log.Printf("guest %s: taking snapshot %s", g.Name, opts.Name)
		s, err := t.snap.CreateSnapshot(ctx, t.gdep, g, opts.Name)
		if err != nil {
			return err
		}
		log.Printf("guest %s: snapshot %s taken: %s", g.Name, s.Name, s.Summary())
	case "restore":
		log.Printf("guest %s: restoring snapshot %s", g.Name, opts.Name)
		if err := t.snap.RestoreSnapshot(ctx, t.gdep, g, opts.Name); err != nil {
			return err
		}
		log.Printf("guest %s: restored snapshot %s", g.Name, opts.Name)
	case "delete":
		if err := t.snap.DeleteSnapshot(ctx, t.gdep, g, opts.Name); err != nil {
			return err
		}
		log.Printf("guest %s: deleted snapshot %s", g.Name, opts.Name)
	default:
		return fmt.Errorf("snapshot: unknown sub-command %q", opts.SubCommand)
	}
	return nil
}

// ListSnapshots lists the snapshots of one guest of d, oldest first. An
// unknown guest wraps ErrNotFound, a kind without snapshots ErrUnsupported,
// a deployment without artefacts or whose guests are not up ErrConflict.
func (e *Engine) ListSnapshots(ctx context.Context, d api.Deployment, guestName string) ([]api.Snapshot, error) {
	t, err := e.snapshotReader(d, guestName)
	if err != nil {
		return nil, err
	}
	list, err := t.snap.ListSnapshots(ctx, t.gdep, t.guest)
	if err != nil {
		return nil, t.readError(err)
	}
	// Never nil: an empty list is [] on the wire.
	return append(make([]api.Snapshot, 0, len(list)), list...), nil
}

// SnapshotInfo describes one snapshot of one guest of d; errors are those
// of ListSnapshots, and an unknown snapshot wraps ErrNotFound (and
// guest.ErrNoSnapshot) with the names there are.
func (e *Engine) SnapshotInfo(ctx context.Context, d api.Deployment, guestName, snapshot string) (api.Snapshot, error) {
	t, err := e.snapshotReader(d, guestName)
	if err != nil {
		return api.Snapshot{}, err
	}
	s, err := t.snap.SnapshotInfo(ctx, t.gdep, t.guest, snapshot)
	if err != nil {
		return api.Snapshot{}, t.readError(err)
	}
	return s, nil
}

// snapshotGuest is a guest whose driver has snapshots.
type snapshotGuest struct {
	dep   api.Deployment
	gdep  guest.Deployment // the deployment as the guest's driver sees it
	guest *topology.Guest
	snap  guest.Snapshotter
}

// snapshotReader is snapshotTarget for a read: the deployment must be up,
// or at least not down, for its guests to exist.
func (e *Engine) snapshotReader(d api.Deployment, name string) (*snapshotGuest, error) {
	t, err := e.snapshotTarget(d, name)
	if err != nil {
		return nil, err
	}
	if d.State.Is(api.StateDown) {
		return nil, fmt.Errorf("%w: deployment %s is down, so guest %s does not exist: run up first, then read its snapshots", ErrConflict, d.Name, name)
	}
	return t, nil
}

// readError sorts a driver's error on reading snapshots: an unknown
// snapshot is not found; while the deployment is not up (an up running or
// failed half-way), a guest that cannot be read is most likely not there yet.
func (t *snapshotGuest) readError(err error) error {
	switch {
	case errors.Is(err, guest.ErrNoSnapshot):
		return inCategory(ErrNotFound, err)
	case !t.dep.State.Is(api.StateUp):
		return fmt.Errorf("%w: deployment %s is %s: %w", ErrConflict, t.dep.Name, t.dep.State, err)
	}
	return err
}

// snapshotTarget finds a guest of the deployment's state and its driver's
// snapshots.
func (e *Engine) snapshotTarget(d api.Deployment, name string) (*snapshotGuest, error) {
	st, err := e.readState(d)
	if err != nil {
		return nil, err
	}
	var names []string
	for i := range st.Guests {
		g := &st.Guests[i]
		names = append(names, g.Name)
		if g.Name != name {
			continue
		}
		host, err := e.opts.Hosts.Host(g.Host)
		if err != nil {
			return nil, fmt.Errorf("guest %s: %w", g.Name, err)
		}
		drv, err := host.Driver(g.Kind)
		if err != nil {
			return nil, fmt.Errorf("guest %s: %w", g.Name, err)
		}
		snap, ok := snapshotterOf(drv)
		if !ok {
			return nil, inCategory(ErrUnsupported, fmt.Errorf("guest %s of kind %s has no snapshots (kinds with snapshots: %s)", g.Name, g.Kind, orNone(strings.Join(snapshotKinds(host), ", "))))
		}
		gdep := guestDeployment(d.Name, host, d.ProjectLocation)
		return &snapshotGuest{dep: d, gdep: gdep, guest: g, snap: snap}, nil
	}
	return nil, inCategory(ErrNotFound, fmt.Errorf("deployment %s has no guest %s (guests: %s)", st.Deployment, name, orNone(strings.Join(names, ", "))))
}

// snapshotterOf is the one place that asks a driver for snapshots.
func snapshotterOf(drv guest.Driver) (guest.Snapshotter, bool) {
	s, err := guest.As[guest.Snapshotter](drv)
	return s, err == nil
}

// snapshotKinds lists the kinds of host whose guests have snapshots.
func snapshotKinds(host Host) []string {
	var out []string
	for _, k := range []string{topology.KindNetns, topology.KindLibvirt, topology.KindDocker} {
		if drv, err := host.Driver(k); err == nil {
			if _, ok := snapshotterOf(drv); ok {
				out = append(out, k)
			}
		}
	}
	return out
}

// categorized is an error that reads as err and also matches the category
// sentinel (ErrNotFound, ErrUnsupported) with errors.Is.
type categorized struct {
	category, err error
}

func inCategory(category, err error) error { return categorized{category: category, err: err} }

func (c categorized) Error() string   { return c.err.Error() }
func (c categorized) Unwrap() []error { return []error{c.category, c.err} }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
