package hostnet

import (
	"context"
	"log/slog"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// TestFailedRouterKeepsLinksInTheWay: a link of the host already named
// like a router's second port makes EnsureRouter fail; neither the failed
// make nor the DeleteRouter of the revert removes that link (it is not a
// port of the router: its peer is on the host), while the first port and
// the namespace go.
func TestFailedRouterKeepsLinksInTheWay(t *testing.T) {
	nettest.RequireRoot(t)
	p := nettest.Prefix(t)
	ctx := context.Background()
	h := NewHost(slog.New(slog.DiscardHandler))
	br := p + "b0"
	if _, err := h.EnsureBridge(ctx, br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.RemoveBridge(ctx, br) })
	inTheWay := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p + "r1"}, PeerName: p + "w1"}
	if err := netlink.LinkAdd(inTheWay); err != nil {
		t.Fatal(err)
	}
	r := topology.Router{
		Name: "r", Namespace: p + "r", Table: p + "t",
		Ports: []topology.RouterPort{
			{Name: "r-0", Switch: "s0", Bridge: br, HostName: p + "r0", IfName: "port0", Address: "10.251.0.1/24", MAC: "02:00:00:fb:00:01"},
			{Name: "r-1", Switch: "s0", Bridge: br, HostName: p + "r1", IfName: "port1", Address: "10.251.1.1/24", MAC: "02:00:00:fb:01:01"},
		},
	}
	if _, err := h.EnsureRouter(ctx, r); err == nil {
		t.Fatal("EnsureRouter with a link in the way of a port succeeded")
	}
	if err := h.DeleteRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(p + "r1"); err != nil {
		t.Errorf("the link in the way was removed: %v", err)
	}
	if _, err := netlink.LinkByName(p + "r0"); err == nil {
		t.Error("the router's first port is left")
	}
	if mounted, _ := namespace.Mounted(namespace.Path(r.Namespace)); mounted {
		t.Error("the router's namespace is left")
	}
}
