package netplumb

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/topology"
)

// What of a router, an external side or an ACL table is there: restore
// after a restart asks (engine.RouterChecker, engine.ACLChecker), and
// EnsureRouter re-makes a router that lost a port.

// RouterMissing lists what of router r is not there: "namespace …", "port
// … on bridge …", "dhcp on switch …" (its server is a goroutine of this
// process). Nothing missing is an empty list.
func (h *Host) RouterMissing(ctx context.Context, r topology.Router) ([]string, error) {
	mounted, err := NetnsMounted(NetnsPath(r.Namespace))
	if err != nil {
		return nil, err
	}
	if !mounted {
		return []string{"namespace " + r.Namespace}, nil
	}
	missing, err := brokenPorts(r)
	if err != nil {
		return nil, err
	}
	h.dhcp.mu.Lock()
	running := h.dhcp.running[r.Namespace]
	for _, p := range r.DHCP {
		if running[p.IfName] == nil {
			missing = append(missing, "dhcp on switch "+p.Switch)
		}
	}
	h.dhcp.mu.Unlock()
	return missing, nil
}

// brokenPorts lists the ports of r whose host end is gone or no longer on
// its bridge (a bridge deleted and made again).
func brokenPorts(r topology.Router) ([]string, error) {
	var out []string
	for _, p := range r.Ports {
		link, err := netlink.LinkByName(p.HostName)
		if isNotFound(err) {
			out = append(out, fmt.Sprintf("port %s on bridge %s", p.HostName, p.Bridge))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up link %s: %w", p.HostName, err)
		}
		br, err := netlink.LinkByName(p.Bridge)
		if isNotFound(err) || err == nil && link.Attrs().MasterIndex != br.Attrs().Index {
			out = append(out, fmt.Sprintf("port %s on bridge %s", p.HostName, p.Bridge))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up bridge %s: %w", p.Bridge, err)
		}
	}
	return out, nil
}

// HasExternal reports whether the host's side of external switch sw is
// there: its table and the address on the bridge.
func (h *Host) HasExternal(ctx context.Context, sw topology.Switch) (bool, error) {
	if sw.External == nil {
		return true, nil
	}
	ok, err := tableExists(sw.External.Table)
	if err != nil || !ok {
		return false, err
	}
	br, err := netlink.LinkByName(sw.Bridge)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up bridge %s: %w", sw.Bridge, err)
	}
	want, err := netip.ParsePrefix(sw.External.Address)
	if err != nil {
		return false, err
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", sw.Bridge, err)
	}
	for _, a := range addrs {
		if p, ok := netip.AddrFromSlice(a.IP.To4()); ok && p == want.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// HasACLTable reports whether the deployment's bridge-family table name
// is there.
func (h *Host) HasACLTable(ctx context.Context, name string) (bool, error) {
	return HasACLTable(ctx, name)
}
