package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/net/impair"
	"github.com/testbedos/testbedos/internal/topology"
)

// setLink records what is in force on a link; a link without an
// impairment and up is forgotten.
func (n *networkFile) setLink(name string, req ImpairRequest) {
	if req.Impairment == (impair.Impairment{}) && req.Up {
		delete(n.Links, name)
		return
	}
	if n.Links == nil {
		n.Links = map[string]ImpairRequest{}
	}
	n.Links[name] = req
}

// linksGone forgets the impairments of a removed guest's links.
func (r *records) linksGone(g *topology.Guest) error {
	return r.editNetwork(func(n *networkFile) {
		for _, ifc := range g.Interfaces {
			delete(n.Links, ifc.HostName)
		}
	})
}

// links returns the impairments recorded on links.
func (r *records) links() (map[string]ImpairRequest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(); err != nil {
		return nil, err
	}
	out := make(map[string]ImpairRequest, len(r.net.Links))
	for k, v := range r.net.Links {
		out[k] = v
	}
	return out, nil
}

// ResumeImpairments sets again, at the start of a client host's server,
// the impairments its record holds on links that exist: those of a kernel
// without netem run in the server's process and ended with the previous
// one. It carries on past errors and returns them all.
func ResumeImpairments(ctx context.Context, opts Options) error {
	ops, ok := opts.Network.(engine.LinkOps)
	if !ok {
		return nil
	}
	rec := newRecords(filepath.Join(opts.DataDir, "agent"))
	links, err := rec.links()
	if err != nil {
		return err
	}
	var errs []error
	for name, req := range links {
		if _, err := ops.LinkUp(ctx, name); err != nil {
			continue // gone: the main makes it again, and sets it
		}
		if err := ops.Impair(ctx, name, req.Impairment, req.Up); err != nil {
			errs = append(errs, fmt.Errorf("link %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
