package netplumb

import (
	"net"

	"github.com/vishvananda/netlink"
)

func addDefaultRoute(gw string) error {
	l, err := netlink.LinkByName("eth0")
	if err != nil {
		return err
	}
	return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)})
}

func setUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

func netlinkLink(name string) (mac string, err error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return "", err
	}
	return l.Attrs().HardwareAddr.String(), nil
}
