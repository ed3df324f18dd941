// Package router makes and removes routers: named network namespaces with
// IP forwarding, a veth port on each switch's bridge, static routes and NAT,
// and finds the ports of a router that are no longer on their bridges.
package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

// A router is a named network namespace with IP forwarding on, one veth per
// port (the host end on the switch's bridge, the other end inside with the
// port's address and MAC), its static routes, and its NAT in an nftables
// table of its own inside the namespace. DHCP on its switches is served by
// package dhcp, not here.

// Exists reports whether the router's namespace is mounted.
func Exists(r topology.Router) (bool, error) {
	return namespace.Mounted(namespace.Path(r.Namespace))
}

// Remove removes the router's ports and namespace; what is missing is fine.
func Remove(r topology.Router) error {
	var errs []error
	for _, p := range r.Ports {
		if err := deletePort(p.HostName); err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", p.HostName, err))
		}
	}
	if err := namespace.Remove(namespace.Path(r.Namespace)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Make makes router r: its namespace, ports, routes and NAT. On error
// nothing of it is left.
func Make(ctx context.Context, r topology.Router) (err error) {
	nsfd, nh, err := createRouterNetns(r.Namespace)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", r.Namespace, err)
	}
	defer func() {
		nh.Close()
		unix.Close(nsfd)
		if err != nil {
			for _, p := range r.Ports {
				_ = deletePort(p.HostName)
			}
			_ = namespace.Remove(namespace.Path(r.Namespace))
		}
	}()
	for _, p := range r.Ports {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := addPort(nh, nsfd, p); err != nil {
			return fmt.Errorf("port %s on switch %s: %w", p.Name, p.Switch, err)
		}
	}
	for _, s := range r.StaticRoutes {
		if s.Unused != "" {
			// Accepted as OVN accepts it, but with nothing to install (the
			// action's log said why).
			continue
		}
		_, dst, err := net.ParseCIDR(s.Prefix)
		if err != nil {
			return fmt.Errorf("route %s: %w", s.Prefix, err)
		}
		err = nh.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP(s.Nexthop)})
		if errors.Is(err, unix.EEXIST) && connected(r, dst) {
			// A route to a subnet the router is attached to, in a state
			// generated before such routes were marked unused: the
			// connected route wins, as in OVN.
			continue
		}
		if err != nil {
			return fmt.Errorf("route %s via %s: %w", s.Prefix, s.Nexthop, err)
		}
	}
	if err := applyNAT(nsfd, r); err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	return nil
}

// connected reports whether dst is the subnet of one of r's ports.
func connected(r topology.Router, dst *net.IPNet) bool {
	for _, p := range r.Ports {
		if _, sub, err := net.ParseCIDR(p.Address); err == nil && sub.String() == dst.String() {
			return true
		}
	}
	return false
}

func addPort(nh *netlink.Handle, nsfd int, p topology.RouterPort) error {
	br, err := netlink.LinkByName(p.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", p.Bridge, err)
	}
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: p.HostName, MasterIndex: br.Attrs().Index, Flags: net.FlagUp},
		PeerName:         p.IfName,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(nsfd),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: %w", p.HostName, err)
	}
	if l, err := netlink.LinkByName(p.HostName); err == nil {
		_ = netlink.LinkSetUp(l)
	}
	link, err := nh.LinkByName(p.IfName)
	if err != nil {
		return fmt.Errorf("find %s in the router: %w", p.IfName, err)
	}
	for _, a := range append([]string{p.Address}, p.Extra...) {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if err := nh.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("address %s: %w", a, err)
		}
	}
	return nh.LinkSetUp(link)
}

// deletePort removes the host end of a router's port: a veth whose peer is
// in another namespace. A link of that name that is something else (its
// peer on the host, another type) was in the way of the port, not made by
// it, and stays; a missing one is fine.
func deletePort(name string) error {
	l, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Type() != "veth" || l.Attrs().NetNsID < 0 {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}

// createRouterNetns makes a router's named namespace with lo up and IP
// forwarding on; it returns a descriptor of it and a netlink handle inside
// it, which the caller closes.
func createRouterNetns(name string) (nsfd int, h *netlink.Handle, err error) {
	if err := namespace.PrepareDir(); err != nil {
		return -1, nil, err
	}
	path := namespace.Path(name)
	if nsfd, h, err = namespace.Create(path); err != nil {
		return -1, nil, err
	}
	// /proc/sys/net is the namespace of the thread that opens it.
	err = namespace.In(path, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	})
	if err != nil {
		h.Close()
		unix.Close(nsfd)
		_ = namespace.Remove(path)
		return -1, nil, fmt.Errorf("enable IP forwarding in %s: %w", name, err)
	}
	return nsfd, h, nil
}
