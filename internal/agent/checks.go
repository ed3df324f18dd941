package agent

import (
	"context"
	"net/http"

	"github.com/testbedos/testbedos/internal/engine"
)

// What the main's restore and up ask a client host about the objects its
// record holds there: whether a tunnel or an ACL table exists, and whether
// the host ends of guests' interfaces are still ports of their bridge (a
// bridge deleted and made again has lost them), with the repair.

// answerExists answers {"exists": …} for the object named in the path,
// checked by has once the name is a valid link name.
func answerExists(w http.ResponseWriter, r *http.Request, what string, has func(ctx context.Context, name string) (bool, error)) error {
	name := r.PathValue("name")
	if !linkName.MatchString(name) {
		return badRequest("invalid %s name %q", what, name)
	}
	ok, err := has(r.Context(), name)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, map[string]bool{"exists": ok})
	return nil
}

func (s *server) hasTunnel(w http.ResponseWriter, r *http.Request) error {
	return answerExists(w, r, "tunnel", func(ctx context.Context, name string) (bool, error) {
		t, err := s.tunnels()
		if err != nil {
			return false, err
		}
		return t.HasTunnel(ctx, name)
	})
}

func (s *server) hasACLTable(w http.ResponseWriter, r *http.Request) error {
	return answerExists(w, r, "acl table", func(ctx context.Context, name string) (bool, error) {
		a, err := s.acls()
		if err != nil {
			return false, err
		}
		return a.HasACLTable(ctx, name)
	})
}

func (s *server) aclReplies(w http.ResponseWriter, r *http.Request) error {
	a, err := s.acls()
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, map[string]string{"replies": a.ACLReplies(r.Context())})
	return nil
}

// portsRequest asks where ports are (Attach false) or puts them back on
// the bridge (Attach true).
type portsRequest struct {
	Ports  []string `json:"ports"`
	Attach bool     `json:"attach,omitempty"`
}

type portsAnswer struct {
	Detached []string `json:"detached"`
	Gone     []string `json:"gone"`
}

func (s *server) bridgePorts(w http.ResponseWriter, r *http.Request) error {
	bridge, err := s.bridgeName(r)
	if err != nil {
		return err
	}
	var req portsRequest
	if err := decodeRequest(w, r, "ports", &req); err != nil {
		return err
	}
	for _, p := range req.Ports {
		if !linkName.MatchString(p) {
			return badRequest("invalid port name %q", p)
		}
	}
	ports, ok := s.opts.Network.(engine.Ports)
	if !ok {
		return &httpError{status: http.StatusNotImplemented, err: engine.ErrNoPorts}
	}
	if req.Attach {
		if err := ports.AttachPorts(r.Context(), bridge, req.Ports); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	detached, gone, err := ports.DetachedPorts(r.Context(), bridge, req.Ports)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, portsAnswer{Detached: detached, Gone: gone})
	return nil
}

// HasTunnel implements engine.Tunnels on the client host.
func (n remoteNetwork) HasTunnel(ctx context.Context, name string) (bool, error) {
	var out struct {
		Exists bool `json:"exists"`
	}
	err := n.h.callJSON(ctx, http.MethodGet, bridgePath("tunnels", name), nil, &out)
	return out.Exists, err
}

// HasACLTable implements engine.ACLs on the client host.
func (n remoteNetwork) HasACLTable(ctx context.Context, name string) (bool, error) {
	var out struct {
		Exists bool `json:"exists"`
	}
	err := n.h.callJSON(ctx, http.MethodGet, bridgePath("acl-tables", name), nil, &out)
	return out.Exists, err
}

// ACLReplies implements engine.ACLs on the client host; a host that cannot
// answer says so instead.
func (n remoteNetwork) ACLReplies(ctx context.Context) string {
	var out struct {
		Replies string `json:"replies"`
	}
	if err := n.h.callJSON(ctx, http.MethodGet, "acl-replies", nil, &out); err != nil {
		return "allow-related: how replies pass on " + n.h.Name() + " is unknown: " + err.Error()
	}
	return out.Replies
}

// DetachedPorts implements engine.Ports on the client host.
func (n remoteNetwork) DetachedPorts(ctx context.Context, bridge string, ports []string) (detached, gone []string, err error) {
	var out portsAnswer
	err = n.h.callJSON(ctx, http.MethodPost, bridgePath("bridges", bridge)+"/ports", portsRequest{Ports: ports}, &out)
	return out.Detached, out.Gone, err
}

// AttachPorts implements engine.Ports on the client host.
func (n remoteNetwork) AttachPorts(ctx context.Context, bridge string, ports []string) error {
	return n.h.callJSON(ctx, http.MethodPost, bridgePath("bridges", bridge)+"/ports", portsRequest{Ports: ports, Attach: true}, nil)
}

var _ engine.Ports = remoteNetwork{}
