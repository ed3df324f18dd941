package ovn

import (
	"context"
	"errors"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// moveUnderlay moves the underlay address onto its OVS bridge on the
// userspace datapath (OVS sends Geneve itself there, through a bridge that
// holds the address); with the kernel datapath nothing moves.
func (n *Network) moveUnderlay(ctx context.Context, u *Underlay) error {
	if u == nil || !n.netdev {
		return nil
	}
	moved := *u
	if moved.Bridge == "" {
		moved.Bridge = UnderlayBridge
	}
	n.underlay = &moved
	return n.AddUnderlay(ctx, moved.Bridge, moved.NIC, moved.CIDR)
}

// restoreUnderlay puts the underlay address back on its link, as it was
// before the server started; errors are the log's (Close goes on).
func (n *Network) restoreUnderlay() {
	u := n.underlay
	if u == nil {
		return
	}
	n.underlay = nil
	addr, err := netlink.ParseAddr(u.CIDR)
	if err != nil {
		return
	}
	n.inNetns(func() error {
		if link, err := netlink.LinkByName(u.Bridge); err == nil {
			if err := netlink.AddrDel(link, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return err
			}
		}
		link, err := netlink.LinkByName(u.NIC)
		if err != nil {
			return err
		}
		return netlink.AddrReplace(link, addr)
	})
}
