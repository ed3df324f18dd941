package vxlan

import (
	"context"
	"net"
	"testing"

	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/nettest"
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
	specA, specB           Spec
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
	nettest.Underlay(t, lab.hostA, lab.hostB, labUnderlayA+"/24", labUnderlayB+"/24")
	for _, h := range []string{lab.hostA, lab.hostB} {
		inNS(t, h, func() error { _, err := bridge.Ensure(context.Background(), "br"); return err })
	}
	lab.addGuest(t, lab.hostA, lab.guestA, "va", lab.addrA)
	lab.addGuest(t, lab.hostA, lab.guestC, "vc", lab.addrC)
	lab.addGuest(t, lab.hostB, lab.guestB, "vb", lab.addrB)
	name := prefix + "x"
	lab.specA = Spec{Name: name, VNI: labVNI, Local: labUnderlayA, Peers: []string{labUnderlayB}, Bridge: "br", MTU: labMTU}
	lab.specB = Spec{Name: name, VNI: labVNI, Local: labUnderlayB, Peers: []string{labUnderlayA}, Bridge: "br", MTU: labMTU}
	return lab
}

// addGuest puts guest's eth0 on host's bridge, through a veth whose host
// end is hostEnd, both ends with the tunnel's MTU.
func (lab *tunnelLab) addGuest(t testing.TB, host, guest, hostEnd string, addr net.IP) {
	t.Helper()
	inNS(t, host, func() error { return nettest.AddVethTo(guest, hostEnd, "eth0", "br", labMTU) })
	inNS(t, guest, func() error { return nettest.SetAddrUp("eth0", addr.String()+"/24") })
}

// makeTunnels makes both hosts' VXLANs and reports what Ensure said.
func (lab *tunnelLab) makeTunnels(t testing.TB) (createdA, createdB bool) {
	t.Helper()
	ctx := context.Background()
	inNS(t, lab.hostA, func() (err error) { createdA, err = Ensure(ctx, lab.specA); return err })
	inNS(t, lab.hostB, func() (err error) { createdB, err = Ensure(ctx, lab.specB); return err })
	return createdA, createdB
}

func inNS(t testing.TB, ns string, fn func() error) {
	t.Helper()
	if err := nettest.InNamespace(ns, fn); err != nil {
		t.Fatalf("in %s: %v", ns, err)
	}
}
