package netplumb

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/netplumb/nettest"
)

// tunnelLab is two "hosts", each a network namespace, joined by a veth
// pair with an address at each end (the underlay). Each host has a bridge
// "br"; guests are namespaces with an eth0 on a host's bridge. Guest A and
// C share host A's bridge, guest B is on host B: A↔C is one bridge, A↔B
// crosses the tunnel once the lab's VXLANs are made.
type tunnelLab struct {
	hostA, hostB           string // namespaces
	guestA, guestB, guestC string // namespaces
	addrA, addrB, addrC    net.IP // guest addresses
	specA, specB           VXLANSpec
}

const (
	labUnderlayA = "10.250.0.1"
	labUnderlayB = "10.250.0.2"
	labVNI       = 4242
	labMTU       = 1450
)

func newTunnelLab(t testing.TB) *tunnelLab {
	t.Helper()
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	lab := &tunnelLab{
		hostA: prefix + "ha", hostB: prefix + "hb",
		guestA: prefix + "ga", guestB: prefix + "gb", guestC: prefix + "gc",
		addrA: net.ParseIP("10.251.0.1"), addrB: net.ParseIP("10.251.0.2"), addrC: net.ParseIP("10.251.0.3"),
	}
	for _, ns := range []string{lab.hostA, lab.hostB, lab.guestA, lab.guestB, lab.guestC} {
		nettest.AddNamespace(t, ns)
	}
	inNS(t, lab.hostA, func() error {
		return addVethTo(lab.hostB, "ul", "ul", "", 0)
	})
	for _, h := range []struct{ ns, addr string }{{lab.hostA, labUnderlayA}, {lab.hostB, labUnderlayB}} {
		inNS(t, h.ns, func() error {
			if err := setAddrUp("ul", h.addr+"/24"); err != nil {
				return err
			}
			return EnsureBridge(context.Background(), "br")
		})
	}
	lab.addGuest(t, lab.hostA, lab.guestA, "va", lab.addrA)
	lab.addGuest(t, lab.hostA, lab.guestC, "vc", lab.addrC)
	lab.addGuest(t, lab.hostB, lab.guestB, "vb", lab.addrB)
	name := prefix + "x"
	lab.specA = VXLANSpec{Name: name, VNI: labVNI, Local: labUnderlayA, Peers: []string{labUnderlayB}, Bridge: "br", MTU: labMTU}
	lab.specB = VXLANSpec{Name: name, VNI: labVNI, Local: labUnderlayB, Peers: []string{labUnderlayA}, Bridge: "br", MTU: labMTU}
	return lab
}

// addGuest puts guest's eth0 on host's bridge, through a veth whose host
// end is hostEnd, both ends with the tunnel's MTU.
func (lab *tunnelLab) addGuest(t testing.TB, host, guest, hostEnd string, addr net.IP) {
	t.Helper()
	inNS(t, host, func() error { return addVethTo(guest, hostEnd, "eth0", "br", labMTU) })
	inNS(t, guest, func() error { return setAddrUp("eth0", addr.String()+"/24") })
}

// makeTunnels makes both hosts' VXLANs and reports what EnsureVXLAN said.
func (lab *tunnelLab) makeTunnels(t testing.TB) (createdA, createdB bool) {
	t.Helper()
	ctx := context.Background()
	inNS(t, lab.hostA, func() (err error) { createdA, err = EnsureVXLAN(ctx, lab.specA); return err })
	inNS(t, lab.hostB, func() (err error) { createdB, err = EnsureVXLAN(ctx, lab.specB); return err })
	return createdA, createdB
}

func inNS(t testing.TB, ns string, fn func() error) {
	t.Helper()
	if err := nettest.InNamespace(ns, fn); err != nil {
		t.Fatalf("in %s: %v", ns, err)
	}
}

// addVethTo creates, in the calling thread's namespace, a veth whose end
// name is here (up, on bridge master unless empty) and whose end peer is
// born in the named namespace other.
func addVethTo(other, name, peer, master string, mtu int) error {
	f, err := os.Open(nettest.NamespacePath(other))
	if err != nil {
		return err
	}
	defer f.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	if master != "" {
		br, err := netlink.LinkByName(master)
		if err != nil {
			return err
		}
		attrs.MasterIndex = br.Attrs().Index
	}
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: peer, PeerNamespace: netlink.NsFd(int(f.Fd())), PeerMTU: uint32(mtu)}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s/%s: %w", name, peer, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(link)
}

func setAddrUp(name, cidr string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", cidr, name, err)
	}
	return netlink.LinkSetUp(link)
}
