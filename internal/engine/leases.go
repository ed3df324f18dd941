package engine

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

// The DHCP leases of guests with ip: dynamic: taken inside the guest right
// after it is made, recorded beside the guest, and handed out again by a
// router made again or a DHCP server started again after a restart.

// leaseDynamic takes the DHCP leases of a guest's ip: dynamic interfaces,
// inside the guest, right after it is made: interface name → CIDR.
func (u *upRun) leaseDynamic(ctx context.Context, pg *placed) (map[string]string, error) {
	var out map[string]string
	for _, ifc := range pg.g.Interfaces {
		if !ifc.Dynamic {
			continue
		}
		nsPath, err := guestNetns(ctx, pg)
		if err != nil {
			return nil, err
		}
		if nsPath == "" {
			// A VM takes its lease with its own DHCP client (cloud-init
			// asks for dhcp4 on this NIC); the driver reads it from the
			// guest.
			addr, err := vmLease(ctx, pg, ifc.Name)
			if err != nil {
				u.log.Printf("    guest %s: %s is dynamic: its lease is not known: %v", pg.g.Name, ifc.Name, err)
				continue
			}
			if out == nil {
				out = map[string]string{}
			}
			out[ifc.Name] = addr
			u.log.Printf("    guest %s: %s leased %s on %s (read from the guest)", pg.g.Name, ifc.Name, addr, ifc.Switch)
			continue
		}
		net, err := RoutersOf(pg.host)
		if err != nil {
			return nil, err
		}
		addr, gw, err := net.Lease(ctx, nsPath, ifc.Name)
		if err != nil {
			return nil, fmt.Errorf("interface %s on switch %s: %w", ifc.Name, ifc.Switch, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[ifc.Name] = addr
		u.log.Printf("    guest %s: %s leased %s (router %s) on %s", pg.g.Name, ifc.Name, addr, gw, ifc.Switch)
	}
	return out, nil
}

// LeaseReader is what a guest driver implements when its guests run their
// own DHCP client (a VM): the address an interface holds, as a CIDR.
type LeaseReader interface {
	Lease(ctx context.Context, dep guest.Deployment, g *topology.Guest, iface string) (string, error)
}

func vmLease(ctx context.Context, pg *placed, iface string) (string, error) {
	r, ok := pg.drv.(LeaseReader)
	if !ok {
		return "", fmt.Errorf("the %s driver cannot read it", pg.g.Kind)
	}
	return r.Lease(ctx, pg.dep, pg.g, iface)
}

// guestNetns is the namespace a guest's DHCP client runs in; "" for a
// guest that takes its lease itself (a VM).
func guestNetns(ctx context.Context, pg *placed) (string, error) {
	if p, err := guest.As[guest.NetnsPather](pg.drv); err == nil {
		return p.NetnsPath(ctx, pg.g)
	}
	if pg.g.Netns != nil {
		return namespace.Path(pg.g.Netns.Namespace), nil
	}
	return "", nil
}

// Leases returns the DHCP leases of a deployment's guests: guest →
// interface name → address (CIDR). Guests without one are absent.
func (e *Engine) Leases(ctx context.Context, deployment string) (map[string]map[string]string, error) {
	rec, err := e.Deployed(ctx, deployment)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, h := range rec.Hosts {
		for name, gr := range h.Guests {
			if len(gr.Leases) > 0 {
				out[name] = gr.Leases
			}
		}
	}
	return out, nil
}

// restoreDHCP starts again the DHCP servers of every router rec holds,
// with the leases rec holds (Resume, at the server's start).
func (e *Engine) restoreDHCP(ctx context.Context, name string, rec *Record) []error {
	var errs []error
	leases := recordLeases(rec)
	for hostName, h := range rec.Hosts {
		for _, rr := range h.Routers {
			if rr.Router == nil || len(rr.Router.DHCP) == 0 {
				continue
			}
			host, err := e.opts.Hosts.Host(hostName)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			net, err := RoutersOf(host)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := net.ServeDHCP(ctx, *rr.Router, leases); err != nil {
				errs = append(errs, fmt.Errorf("deployment %s: %w", name, err))
			}
		}
	}
	return errs
}

// recordLeases are the DHCP leases the record's guests hold: MAC →
// address.
func recordLeases(rec *Record) map[string]string {
	leases := map[string]string{}
	for _, h := range rec.Hosts {
		for _, gr := range h.Guests {
			for _, ifc := range gr.Guest.Interfaces {
				if a, ok := gr.Leases[ifc.Name]; ok {
					if p, err := parseCIDRAddr(a); err == nil {
						leases[ifc.MAC] = p
					}
				}
			}
		}
	}
	return leases
}

func parseCIDRAddr(s string) (string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", err
	}
	return p.Addr().String(), nil
}
