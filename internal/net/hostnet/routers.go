package hostnet

import (
	"context"
	"errors"
	"fmt"

	"github.com/testbedos/testbedos/internal/net/aclnft"
	"github.com/testbedos/testbedos/internal/net/router"
	"github.com/testbedos/testbedos/internal/topology"
)

// Routers and their DHCP servers: what of a router is there (restore after
// a restart asks), made again when a port is lost.

// EnsureRouter makes router r if its namespace is missing, or a port of
// it is (a bridge deleted and made again), and reports whether it did. A
// router whose namespace and ports are there is taken as made: only its
// DHCP servers are (re)started. On error nothing of it is left.
func (h *Host) EnsureRouter(ctx context.Context, r topology.Router) (created bool, err error) {
	mounted, err := router.Exists(r)
	if err != nil {
		return false, err
	}
	if mounted {
		broken, err := router.BrokenPorts(r)
		if err != nil {
			return false, err
		}
		if len(broken) > 0 {
			if err := h.DeleteRouter(ctx, r); err != nil {
				return false, fmt.Errorf("router %s: remove it to make it again (%v missing): %w", r.Name, broken, err)
			}
			mounted = false
		}
	} else {
		// Servers of a namespace that went away serve nothing.
		h.dhcp.Stop(r.Namespace)
	}
	if !mounted {
		if err := router.Make(ctx, r); err != nil {
			return false, fmt.Errorf("router %s: %w", r.Name, err)
		}
	}
	if err := h.dhcp.Serve(r, nil, h.log); err != nil {
		if !mounted {
			err = errors.Join(err, h.DeleteRouter(context.WithoutCancel(ctx), r))
		}
		return false, fmt.Errorf("router %s: %w", r.Name, err)
	}
	return !mounted, nil
}

// ServeDHCP (re)starts the DHCP servers of an existing router, handing out
// again the leases given (MAC → address) before a restart.
func (h *Host) ServeDHCP(ctx context.Context, r topology.Router, leases map[string]string) error {
	if mounted, err := router.Exists(r); err != nil || !mounted {
		return fmt.Errorf("router %s: namespace %s is not there (%v)", r.Name, r.Namespace, err)
	}
	return h.dhcp.Serve(r, leases, h.log)
}

// DeleteRouter stops the router's DHCP servers and removes its ports and
// namespace; what is missing is fine.
func (h *Host) DeleteRouter(ctx context.Context, r topology.Router) error {
	h.dhcp.Stop(r.Namespace)
	return router.Remove(r)
}

// HasRouter reports whether the router's namespace exists.
func (h *Host) HasRouter(ctx context.Context, r topology.Router) (bool, error) {
	return router.Exists(r)
}

// RouterMissing lists what of router r is not there: "namespace …", "port
// … on bridge …", "dhcp on switch …" (its server is a goroutine of this
// process). Nothing missing is an empty list.
func (h *Host) RouterMissing(ctx context.Context, r topology.Router) ([]string, error) {
	mounted, err := router.Exists(r)
	if err != nil {
		return nil, err
	}
	if !mounted {
		return []string{"namespace " + r.Namespace}, nil
	}
	missing, err := router.BrokenPorts(r)
	if err != nil {
		return nil, err
	}
	for _, p := range r.DHCP {
		if !h.dhcp.Serving(r.Namespace, p.IfName) {
			missing = append(missing, "dhcp on switch "+p.Switch)
		}
	}
	return missing, nil
}

// HasACLTable reports whether the deployment's bridge-family table name
// is there.
func (h *Host) HasACLTable(ctx context.Context, name string) (bool, error) {
	return aclnft.HasTable(ctx, name)
}
