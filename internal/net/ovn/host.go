package ovn

import (
	"context"
	"errors"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/topology"
)

// Host is this machine's network with the ovn backend: the logical network
// in OVN, guests' host ends on the integration bridge. What is not a
// switch (impairments, captures, DHCP leases taken inside a guest) is the
// machine's own network, as with the bridge backend.
type Host struct {
	*hostnet.Host
	OVN *Network
}

// BindPort makes the host end of ifc a port of the integration bridge
// bound to the interface's logical port: the logical switch is named after
// the interface's bridge, its port after the host end. It implements
// guest.PortBinder.
func (h *Host) BindPort(ctx context.Context, ifc topology.Interface) error {
	return h.OVN.AttachPort(ctx, ifc.HostName, ifc.Bridge, ifc.HostName)
}

// UnbindPorts removes the integration bridge's ports of the host ends of
// ifaces (a guest destroyed on a client, whose switches' rows are the
// main's); missing ones are fine.
func (h *Host) UnbindPorts(ctx context.Context, ifaces []topology.Interface) error {
	names := map[string]bool{}
	for _, ifc := range ifaces {
		names[ifc.HostName] = true
	}
	return h.OVN.DeletePorts(ctx, func(name string) bool { return names[name] })
}

// GuestTxOffloadOff implements guest.PortBinder: on the userspace datapath.
func (h *Host) GuestTxOffloadOff() bool { return h.OVN.Userspace() }

// DetachedPorts returns, of the host ends ports, those that exist but are
// not bound on the integration bridge (detached) and those that do not
// exist (gone); bridge is the logical switch.
func (h *Host) DetachedPorts(_ context.Context, _ string, ports []string) (detached, gone []string, err error) {
	for _, p := range ports {
		_, lerr := netlink.LinkByName(p)
		var nf netlink.LinkNotFoundError
		switch {
		case errors.As(lerr, &nf):
			gone = append(gone, p)
		case lerr != nil:
			return nil, nil, lerr
		case !h.OVN.HasPort(p):
			detached = append(detached, p)
		}
	}
	return detached, gone, nil
}

// AttachPorts binds the existing host ends ports to their logical ports of
// the logical switch bridge again.
func (h *Host) AttachPorts(ctx context.Context, bridge string, ports []string) error {
	for _, p := range ports {
		if err := h.OVN.AttachPort(ctx, p, bridge, p); err != nil {
			return err
		}
	}
	return nil
}

// Logical is the host's OVN.
func (h *Host) Logical() *Network { return h.OVN }
