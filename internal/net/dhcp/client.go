package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/testbedos/testbedos/internal/net/namespace"
)

// requestLease runs a DHCP exchange on ifname inside the namespace at
// nsPath: the client's raw socket is made there.
func requestLease(ctx context.Context, nsPath, ifname string) (lease, error) {
	var c *nclient4.Client
	err := namespace.In(nsPath, func() error {
		var err error
		c, err = nclient4.New(ifname, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(5))
		return err
	})
	if err != nil {
		return lease{}, fmt.Errorf("dhcp client on %s: %w", ifname, err)
	}
	defer c.Close()
	l, err := c.Request(ctx)
	if err != nil {
		return lease{}, fmt.Errorf("dhcp on %s: %w", ifname, err)
	}
	ip, ok := netip.AddrFromSlice(l.ACK.YourIPAddr.To4())
	if !ok {
		return lease{}, fmt.Errorf("dhcp on %s: the server gave no address", ifname)
	}
	ones, _ := l.ACK.SubnetMask().Size()
	if l.ACK.SubnetMask() == nil {
		ones = 32
	}
	out := lease{addr: netip.PrefixFrom(ip, ones)}
	if rs := l.ACK.Router(); len(rs) > 0 {
		out.router, _ = netip.AddrFromSlice(rs[0].To4())
	}
	return out, nil
}

// applyLease sets the leased address and the default route in the
// namespace; both may be there already (a lease taken again).
func applyLease(nsPath, ifname string, l lease) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s: %w", ifname, err)
	}
	addr, err := netlink.ParseAddr(l.addr.String())
	if err != nil {
		return err
	}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", l.addr, ifname, err)
	}
	if l.router.IsValid() {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(l.router.AsSlice())}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("default route via %s on %s: %w", l.router, ifname, err)
		}
	}
	return nil
}

// Lease asks the DHCP server on ifname's switch for an address from inside
// the namespace mounted at nsPath, and sets the address and a default route
// via the lease's router there. It returns the address as CIDR.
func Lease(ctx context.Context, nsPath, ifname string) (addr, router string, err error) {
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
