package agent

import (
	"context"
	"net/http"

	"github.com/testbedos/testbedos/internal/engine"
)

// A deployment's ACL table on a client host (engine.ACLs), written at the
// main's request. The main's record holds it and its down deletes it; the
// agent keeps no record of its own for it (a clean without the main leaves
// the table, whose rules only name the deployment's own ports).

func (s *server) acls() (engine.ACLs, error) {
	a, ok := s.opts.Network.(engine.ACLs)
	if !ok {
		return nil, &httpError{status: http.StatusNotImplemented, err: engine.ErrNoACLs}
	}
	return a, nil
}

func (s *server) ensureACLTable(w http.ResponseWriter, r *http.Request) error {
	var spec engine.ACLTableSpec
	if err := decodeRequest(w, r, "acl table", &spec); err != nil {
		return err
	}
	if !linkName.MatchString(spec.Name) {
		return badRequest("invalid acl table name %q", spec.Name)
	}
	a, err := s.acls()
	if err != nil {
		return err
	}
	created, err := a.EnsureACLTable(r.Context(), spec)
	if err != nil {
		return err
	}
	writeAnswer(w, http.StatusOK, map[string]bool{"created": created})
	return nil
}

func (s *server) deleteACLTable(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !linkName.MatchString(name) {
		return badRequest("invalid acl table name %q", name)
	}
	a, err := s.acls()
	if err != nil {
		return err
	}
	if err := a.DeleteACLTable(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// EnsureACLTable implements engine.ACLs on the client host.
func (n remoteNetwork) EnsureACLTable(ctx context.Context, spec engine.ACLTableSpec) (bool, error) {
	var out struct {
		Created bool `json:"created"`
	}
	err := n.h.callJSON(ctx, http.MethodPost, "acl-tables", spec, &out)
	return out.Created, err
}

// DeleteACLTable implements engine.ACLs on the client host.
func (n remoteNetwork) DeleteACLTable(ctx context.Context, name string) error {
	return n.h.callJSON(ctx, http.MethodDelete, bridgePath("acl-tables", name), nil, nil)
}

var _ engine.ACLs = remoteNetwork{}
