package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// Snapshots reads the snapshots of a deployment's guests (the engine). An
// unknown guest or snapshot is an error wrapping engine.ErrNotFound, a kind
// without snapshots engine.ErrUnsupported, a deployment whose guests are not
// there engine.ErrConflict.
type Snapshots interface {
	ListSnapshots(ctx context.Context, d api.Deployment, guest string) ([]api.Snapshot, error)
	SnapshotInfo(ctx context.Context, d api.Deployment, guest, snapshot string) (api.Snapshot, error)
}

func listSnapshots(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		dep, guestName, err := snapshotGuest(d, r)
		if err != nil {
			return err
		}
		list, err := d.Snapshots.ListSnapshots(r.Context(), dep, guestName)
		if err != nil {
			return err
		}
		if list == nil {
			list = []api.Snapshot{}
		}
		writeJSON(w, http.StatusOK, api.SnapshotList{Guest: guestName, Snapshots: list})
		return nil
	}
}

func snapshotInfo(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		snap := r.PathValue("snapshot")
		if !api.ValidName(snap) {
			return errorf(http.StatusBadRequest, nil, fmt.Sprintf("snapshot name %q does not match %s", snap, api.NamePattern))
		}
		dep, guestName, err := snapshotGuest(d, r)
		if err != nil {
			return err
		}
		s, err := d.Snapshots.SnapshotInfo(r.Context(), dep, guestName, snap)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	}
}

// snapshotGuest checks the names of the request's path and returns the
// deployment and the guest's name.
func snapshotGuest(d Deps, r *http.Request) (api.Deployment, string, error) {
	name, guestName := r.PathValue("name"), r.PathValue("guest")
	if err := store.CheckName(name); err != nil {
		return api.Deployment{}, "", err
	}
	if !api.ValidName(guestName) {
		return api.Deployment{}, "", errorf(http.StatusBadRequest, nil, fmt.Sprintf("guest name %q does not match %s", guestName, api.NamePattern))
	}
	if d.Snapshots == nil {
		// A server assembled with an executor that is not the engine.
		return api.Deployment{}, "", errorf(http.StatusServiceUnavailable, nil, "this server cannot read snapshots: it runs without the orchestration engine")
	}
	dep, err := d.Store.Deployment(r.Context(), name)
	return dep, guestName, err
}
