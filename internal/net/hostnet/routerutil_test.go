package hostnet

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/nettest"
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

func inNS(t testing.TB, ns string, fn func() error) {
	t.Helper()
	if err := nettest.InNamespace(ns, fn); err != nil {
		t.Fatalf("in %s: %v", ns, err)
	}
}
