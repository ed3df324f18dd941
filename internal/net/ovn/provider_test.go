package ovn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/net/nettest"
)

// host.json's bridge mappings reach the chassis: a provider network named
// by a localnet port maps to the bridge host.json gives it
// (ovn-bridge-mappings), ovn-controller patches the localnet ports of two
// labs to that bridge, and the bridge goes with the last of them; a bridge
// the host made itself is never removed.
func TestBridgeMappings(t *testing.T) {
	n, _ := openTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := nettest.Prefix(t)
	br := p + "ex"
	n.mappings = map[string]string{"public": br}
	pub := ProviderSpec{Network: "public", Own: true, Shared: true}
	if n.ProviderBridge("public") != br || n.ProviderBridge("lab") == br {
		t.Fatalf("ProviderBridge: public %s, lab %s", n.ProviderBridge("public"), n.ProviderBridge("lab"))
	}
	var switches []string
	for _, lab := range []string{"a", "b"} {
		if err := n.EnsureProvider(ctx, pub); err != nil {
			t.Fatal(err)
		}
		ls := p + lab
		// A port bound here makes the switch local: only then does
		// ovn-controller patch its localnet port.
		if err := n.PutSwitch(ctx, SwitchSpec{Name: ls, Deployment: p + lab, Provider: &pub, HostPort: true}); err != nil {
			t.Fatal(err)
		}
		switches = append(switches, ls)
		t.Cleanup(func() { n.DeleteSwitch(context.Background(), ls) })
	}
	t.Cleanup(func() { n.DeleteProvider(context.Background(), pub) })
	if m := n.Mappings(); m["public"] != br {
		t.Fatalf("ovn-bridge-mappings %v, want public:%s", m, br)
	}
	for _, ls := range switches {
		patch := "patch-ln-" + ls + "-to-br-int"
		if err := waitFor(ctx, patch+" on "+br, func() bool { return n.bridgeHasPort(br, patch) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, ls := range switches {
		if err := n.DeleteSwitch(ctx, ls); err != nil {
			t.Fatal(err)
		}
		if err := n.RemoveLocalnetPatch(ctx, ls); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.DeleteProvider(ctx, pub); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Mappings()["public"]; ok || n.HasProvider(pub) {
		t.Fatalf("the provider network is left: mappings %v, bridge %v", n.Mappings(), n.HasProvider(pub))
	}

	// The host's own bridge (not made here) stays.
	row, err := n.switchConfig()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := n.bridgeOps(row, br, nil)
	if err == nil {
		_, err = transact(ctx, n.ovs, ops...)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteProvider(ctx, pub); err != nil || !n.HasProvider(pub) {
		t.Fatalf("the host's own bridge %s was removed (%v)", br, err)
	}
	n.DeleteProvider(ctx, ProviderSpec{Network: "public", Bridge: br, Own: true})
}

// bridgeHasPort reports whether OVS bridge br has a port named port.
func (n *Network) bridgeHasPort(br, port string) bool {
	b, err := n.bridgeRow(br)
	if err != nil {
		return false
	}
	for _, id := range b.Ports {
		p := &Port{UUID: id}
		if n.ovs.Get(context.Background(), p) == nil && strings.EqualFold(p.Name, port) {
			return true
		}
	}
	return false
}
