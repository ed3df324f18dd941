package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// SnapshotRequest is the body of POST /api/agent/snapshots/{op} (create,
// list, info, restore, delete).
type SnapshotRequest struct {
	GuestRequest
	Name string `json:"name,omitempty"`
}

// snapshotCall serves the snapshot operations of the client's drivers. They
// are short, plain JSON calls: no log lines.
func (s *server) snapshotCall(w http.ResponseWriter, r *http.Request) error {
	op := r.PathValue("op")
	var req SnapshotRequest
	if err := decodeRequest(w, r, "snapshot request", &req); err != nil {
		return err
	}
	if !api.ValidName(req.Deployment) || req.Guest.Name == "" {
		return badRequest("snapshot request: invalid deployment %q or no guest", req.Deployment)
	}
	if s.opts.Drivers == nil {
		return &httpError{status: http.StatusNotImplemented, err: fmt.Errorf("this host has no guest drivers")}
	}
	drv, err := s.opts.Drivers.Driver(req.Guest.Kind)
	if err != nil {
		return &httpError{status: http.StatusNotImplemented, err: err}
	}
	snap, err := guest.As[guest.Snapshotter](drv)
	if err != nil {
		return &httpError{status: http.StatusNotImplemented, err: err}
	}
	g, err := s.localGuest(req.GuestRequest)
	if err != nil {
		return err
	}
	ctx, dep := r.Context(), s.deployment(req.Deployment, req.Files)
	var out any
	switch op {
	case "create":
		out, err = snap.CreateSnapshot(ctx, dep, g, req.Name)
	case "list":
		out, err = snap.ListSnapshots(ctx, dep, g)
	case "info":
		out, err = snap.SnapshotInfo(ctx, dep, g, req.Name)
	case "restore":
		err = snap.RestoreSnapshot(ctx, dep, g, req.Name)
	case "delete":
		err = snap.DeleteSnapshot(ctx, dep, g, req.Name)
	default:
		return &httpError{status: http.StatusNotFound, err: fmt.Errorf("no snapshot operation %q", op)}
	}
	if err != nil {
		return err
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeAnswer(w, http.StatusOK, out)
	return nil
}

// snapshotTimeout bounds one snapshot call: a snapshot with a VM's memory
// takes a while.
const snapshotTimeout = 10 * time.Minute

var _ guest.Snapshotter = (*proxyDriver)(nil)

func (p *proxyDriver) snapshot(ctx context.Context, op string, dep guest.Deployment, g *topology.Guest, name string, out any) error {
	return p.h.callJSONWithin(ctx, snapshotTimeout, http.MethodPost, "snapshots/"+op,
		SnapshotRequest{GuestRequest: GuestRequest{Deployment: dep.Name, Guest: *g}, Name: name}, out)
}

// CreateSnapshot implements guest.Snapshotter.
func (p *proxyDriver) CreateSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	var out guest.Snapshot
	err := p.snapshot(ctx, "create", dep, g, name, &out)
	return out, err
}

// ListSnapshots implements guest.Snapshotter.
func (p *proxyDriver) ListSnapshots(ctx context.Context, dep guest.Deployment, g *topology.Guest) ([]guest.Snapshot, error) {
	var out []guest.Snapshot
	err := p.snapshot(ctx, "list", dep, g, "", &out)
	return out, err
}

// SnapshotInfo implements guest.Snapshotter.
func (p *proxyDriver) SnapshotInfo(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	var out guest.Snapshot
	err := p.snapshot(ctx, "info", dep, g, name, &out)
	return out, err
}

// RestoreSnapshot implements guest.Snapshotter.
func (p *proxyDriver) RestoreSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	return p.snapshot(ctx, "restore", dep, g, name, nil)
}

// DeleteSnapshot implements guest.Snapshotter.
func (p *proxyDriver) DeleteSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	return p.snapshot(ctx, "delete", dep, g, name, nil)
}
