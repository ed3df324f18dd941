package agent

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/testbedos/testbedos/internal/engine"
)

// The VXLAN tunnels of switches spanning hosts (engine.Tunnels), made on the
// client at the main's request. A tunnel is recorded with its bridge before
// it is made, so cleaning the bridge removes it too.

func (s *server) tunnels() (engine.Tunnels, error) {
	t, ok := s.opts.Network.(engine.Tunnels)
	if !ok {
		return nil, &httpError{status: http.StatusNotImplemented, err: engine.ErrNoTunnels}
	}
	return t, nil
}

func (s *server) ensureTunnel(w http.ResponseWriter, r *http.Request) error {
	var spec engine.TunnelSpec
	if err := decodeRequest(w, r, "tunnel", &spec); err != nil {
		return err
	}
	if !linkName.MatchString(spec.Name) || !linkName.MatchString(spec.Bridge) {
		return badRequest("invalid tunnel %q or bridge %q", spec.Name, spec.Bridge)
	}
	t, err := s.tunnels()
	if err != nil {
		return err
	}
	if err := s.rec.editNetwork(func(n *networkFile) {
		b := n.Bridges[spec.Bridge]
		if !slices.Contains(b.Tunnels, spec.Name) {
			b.Tunnels = append(b.Tunnels, spec.Name)
		}
		n.Bridges[spec.Bridge] = b
	}); err != nil {
		return err
	}
	created, err := t.EnsureTunnel(r.Context(), spec)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, map[string]bool{"created": created})
	return nil
}

func (s *server) deleteTunnel(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !linkName.MatchString(name) {
		return badRequest("invalid tunnel name %q", name)
	}
	t, err := s.tunnels()
	if err != nil {
		return err
	}
	if err := t.DeleteTunnel(r.Context(), name); err != nil {
		return err
	}
	if err := s.rec.editNetwork(func(n *networkFile) {
		for br, b := range n.Bridges {
			if i := slices.Index(b.Tunnels, name); i >= 0 {
				b.Tunnels = slices.Delete(b.Tunnels, i, i+1)
				n.Bridges[br] = b
			}
		}
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cleanTunnels removes the tunnels recorded on a bridge that is cleaned.
func (s *server) cleanTunnels(ctx context.Context, b DeployedBridge) error {
	if len(b.Tunnels) == 0 {
		return nil
	}
	t, err := s.tunnels()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range b.Tunnels {
		errs = append(errs, t.DeleteTunnel(ctx, name))
	}
	return errors.Join(errs...)
}

// EnsureTunnel implements engine.Tunnels on the client host.
func (n remoteNetwork) EnsureTunnel(ctx context.Context, spec engine.TunnelSpec) (bool, error) {
	var out struct {
		Created bool `json:"created"`
	}
	err := n.h.callJSON(ctx, http.MethodPost, "tunnels", spec, &out)
	return out.Created, err
}

// DeleteTunnel implements engine.Tunnels on the client host.
func (n remoteNetwork) DeleteTunnel(ctx context.Context, name string) error {
	return n.h.callJSON(ctx, http.MethodDelete, bridgePath("tunnels", name), nil, nil)
}

var _ engine.Tunnels = remoteNetwork{}
