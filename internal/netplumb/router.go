package netplumb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/topology"
)

// A router is a named network namespace with IP forwarding on, one veth per
// port (the host end on the switch's bridge, the other end inside with the
// port's address and MAC), its static routes, and its NAT in an nftables
// table of its own inside the namespace. DHCP on its switches is served by
// goroutines of this process (dhcp.go).

// EnsureRouter makes router r if its namespace is missing, or a port of
// it is (a bridge deleted and made again), and reports whether it did. A
// router whose namespace and ports are there is taken as made: only its
// DHCP servers are (re)started. On error nothing of it is left.
func (h *Host) EnsureRouter(ctx context.Context, r topology.Router) (created bool, err error) {
	mounted, err := NetnsMounted(NetnsPath(r.Namespace))
	if err != nil {
		return false, err
	}
	if mounted {
		broken, err := brokenPorts(r)
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
		h.dhcp.stop(r.Namespace)
	}
	if !mounted {
		if err := makeRouter(ctx, r); err != nil {
			return false, fmt.Errorf("router %s: %w", r.Name, err)
		}
	}
	if err := h.dhcp.serve(r, nil, h.fw.log); err != nil {
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
	if mounted, err := NetnsMounted(NetnsPath(r.Namespace)); err != nil || !mounted {
		return fmt.Errorf("router %s: namespace %s is not there (%v)", r.Name, r.Namespace, err)
	}
	return h.dhcp.serve(r, leases, h.fw.log)
}

// DeleteRouter stops the router's DHCP servers and removes its ports and
// namespace; what is missing is fine.
func (h *Host) DeleteRouter(ctx context.Context, r topology.Router) error {
	h.dhcp.stop(r.Namespace)
	var errs []error
	for _, p := range r.Ports {
		if err := deletePort(p.HostName); err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", p.HostName, err))
		}
	}
	if err := RemoveNetns(NetnsPath(r.Namespace)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// HasRouter reports whether the router's namespace exists.
func (h *Host) HasRouter(ctx context.Context, r topology.Router) (bool, error) {
	return NetnsMounted(NetnsPath(r.Namespace))
}

func makeRouter(ctx context.Context, r topology.Router) (err error) {
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
			_ = RemoveNetns(NetnsPath(r.Namespace))
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
		_, dst, err := net.ParseCIDR(s.Prefix)
		if err != nil {
			return fmt.Errorf("route %s: %w", s.Prefix, err)
		}
		if err := nh.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP(s.Nexthop)}); err != nil {
			return fmt.Errorf("route %s via %s: %w", s.Prefix, s.Nexthop, err)
		}
	}
	if err := applyNAT(nsfd, r); err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	return nil
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

// deleteLink removes a link by name; a missing one is fine.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err
	}
	return nil
}

// Lease asks the DHCP server on ifname's switch for an address from inside
// the namespace mounted at nsPath, and sets the address and a default route
// via the lease's router there. It returns the address as CIDR.
func (h *Host) Lease(ctx context.Context, nsPath, ifname string) (addr, router string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := requestLease(ctx, nsPath, ifname)
	if err != nil {
		return "", "", err
	}
	if err := applyLease(nsPath, ifname, l); err != nil {
		return "", "", err
	}
	gw := ""
	if l.router.IsValid() {
		gw = l.router.String()
	}
	return l.addr.String(), gw, nil
}

type lease struct {
	addr   netip.Prefix
	router netip.Addr
}

// createRouterNetns makes a router's named namespace with lo up and IP
// forwarding on; it returns a descriptor of it and a netlink handle inside
// it, which the caller closes.
func createRouterNetns(name string) (nsfd int, h *netlink.Handle, err error) {
	if err := PrepareNetnsDir(); err != nil {
		return -1, nil, err
	}
	path := NetnsPath(name)
	if nsfd, h, err = CreateNetns(path); err != nil {
		return -1, nil, err
	}
	// /proc/sys/net is the namespace of the thread that opens it.
	err = InNetns(path, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644)
	})
	if err != nil {
		h.Close()
		unix.Close(nsfd)
		_ = RemoveNetns(path)
		return -1, nil, fmt.Errorf("enable IP forwarding in %s: %w", name, err)
	}
	return nsfd, h, nil
}
