package hostnet

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// routerLab is two bridges of this host joined by a router, with guests
// (namespaces): g0 and g2 on bridge 0, g1 on bridge 1; g0↔g1 is routed,
// g0↔g2 one bridge.
type routerLab struct {
	h          *Host
	router     topology.Router
	g0, g1, g2 string
	bridges    []string
}

func newRouterLab(t testing.TB, nat ...topology.NATRule) *routerLab {
	t.Helper()
	nettest.RequireRoot(t)
	p := nettest.Prefix(t)
	ctx := context.Background()
	lab := &routerLab{h: NewHost(slog.New(slog.DiscardHandler)), g0: p + "g0", g1: p + "g1", g2: p + "g2", bridges: []string{p + "b0", p + "b1"}}
	for _, br := range lab.bridges {
		if _, err := lab.h.EnsureBridge(ctx, br); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lab.h.RemoveBridge(ctx, br) })
		if err := lab.h.AllowBridge(ctx, br); err != nil {
			t.Fatal(err)
		}
	}
	lab.router = topology.Router{
		Name: "r", Namespace: p + "r", Table: p + "t",
		Ports: []topology.RouterPort{
			{Name: "r-0", Switch: "s0", Bridge: lab.bridges[0], HostName: p + "r0", IfName: "port0", Address: "10.252.0.1/24", MAC: "02:00:00:fc:00:01"},
			{Name: "r-1", Switch: "s1", Bridge: lab.bridges[1], HostName: p + "r1", IfName: "port1", Address: "10.252.1.1/24", MAC: "02:00:00:fc:01:01"},
		},
		DHCP: []topology.DHCPPool{{Switch: "s1", IfName: "port1", Gateway: "10.252.1.1", Subnet: "10.252.1.0/24",
			ExcludeFrom: "10.252.1.2", ExcludeTo: "10.252.1.49", Reserved: []string{"10.252.1.50"}}},
		NAT: nat,
	}
	for _, n := range nat {
		if n.Type == topology.NATDnatAndSnat {
			lab.router.Ports[1].Extra = append(lab.router.Ports[1].Extra, n.ExternalIP+"/24")
		}
	}
	created, err := lab.h.EnsureRouter(ctx, lab.router)
	if err != nil || !created {
		t.Fatalf("EnsureRouter = %v, %v", created, err)
	}
	t.Cleanup(func() { _ = lab.h.DeleteRouter(ctx, lab.router) })
	for _, g := range []struct {
		ns, hostEnd, br, addr, gw string
	}{
		{lab.g0, p + "v0", lab.bridges[0], "10.252.0.10/24", "10.252.0.1"},
		{lab.g1, p + "v1", lab.bridges[1], "10.252.1.50/24", "10.252.1.1"},
		{lab.g2, p + "v2", lab.bridges[0], "10.252.0.11/24", ""},
	} {
		nettest.AddNamespace(t, g.ns)
		if err := nettest.AddVethTo(g.ns, g.hostEnd, "eth0", g.br, 0); err != nil {
			t.Fatal(err)
		}
		inNS(t, g.ns, func() error {
			if err := nettest.SetAddrUp("eth0", g.addr); err != nil {
				return err
			}
			if g.gw == "" {
				return nil
			}
			return addDefaultRoute(g.gw)
		})
	}
	return lab
}

func TestRouterForwardsLeasesAndIsRemoved(t *testing.T) {
	lab := newRouterLab(t)
	ctx := context.Background()
	if err := nettest.Ping(lab.g0, net.ParseIP("10.252.1.50"), 5*time.Second); err != nil {
		t.Fatalf("routed ping: %v", err)
	}
	// A fourth guest on bridge 1 without an address takes a lease: the
	// first address after the excluded range.
	p := strings.TrimSuffix(lab.g0, "g0")
	dyn := p + "g3"
	nettest.AddNamespace(t, dyn)
	if err := nettest.AddVethTo(dyn, p+"v3", "eth0", lab.bridges[1], 0); err != nil {
		t.Fatal(err)
	}
	inNS(t, dyn, func() error { return setUp("eth0") })
	addr, gw, err := lab.h.Lease(ctx, nettest.NamespacePath(dyn), "eth0")
	if err != nil || addr != "10.252.1.51/24" || gw != "10.252.1.1" {
		t.Fatalf("Lease = %s, %s, %v; want 10.252.1.51/24 via 10.252.1.1 (.2-.49 excluded, .50 reserved)", addr, gw, err)
	}
	// Taken again, the same address.
	if again, _, err := lab.h.Lease(ctx, nettest.NamespacePath(dyn), "eth0"); err != nil || again != addr {
		t.Fatalf("second lease %s, %v", again, err)
	}
	if err := nettest.Ping(dyn, net.ParseIP("10.252.0.10"), 5*time.Second); err != nil {
		t.Fatalf("leased guest through the router: %v", err)
	}
	// A restarted daemon (a new Host) serves again, handing out the leases
	// it is given.
	var mac string
	inNS(t, dyn, func() error {
		l, err := netlinkLink("eth0")
		mac = l
		return err
	})
	lab.h.dhcp.Stop(lab.router.Namespace)
	h2 := NewHost(nil)
	if err := h2.ServeDHCP(ctx, lab.router, map[string]string{mac: "10.252.1.60"}); err != nil {
		t.Fatal(err)
	}
	defer h2.dhcp.Stop(lab.router.Namespace)
	if again, _, err := h2.Lease(ctx, nettest.NamespacePath(dyn), "eth0"); err != nil || again != "10.252.1.60/24" {
		t.Fatalf("lease from the restarted server %s, %v; want the seeded 10.252.1.60/24", again, err)
	}
	if err := lab.h.DeleteRouter(ctx, lab.router); err != nil {
		t.Fatal(err)
	}
	if ok, _ := lab.h.HasRouter(ctx, lab.router); ok {
		t.Fatal("router namespace left")
	}
	for _, port := range lab.router.Ports {
		if err := links.Delete(port.HostName); err != nil {
			t.Fatal(err)
		}
	}
	if links, _, _ := nettest.Leftovers(lab.router.Ports[0].HostName); len(links) > 0 {
		t.Fatalf("ports left: %v", links)
	}
	if err := lab.h.DeleteRouter(ctx, lab.router); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

// BenchmarkRoutedThroughput compares TCP throughput between two guests
// through a router with the same between two guests on one bridge, in the
// same run.
func BenchmarkRoutedThroughput(b *testing.B) {
	lab := newRouterLab(b)
	for _, p := range []struct{ name, from, to, dst string }{
		{"bridge", lab.g0, lab.g2, "10.252.0.11"},
		{"router", lab.g0, lab.g1, "10.252.1.50"},
	} {
		if err := nettest.Ping(p.from, net.ParseIP(p.dst), 5*time.Second); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		b.Run(p.name, func(b *testing.B) {
			const n = 256 << 20
			var rates float64
			for b.Loop() {
				rate, err := nettest.TCPThroughput(p.from, p.to, net.JoinHostPort(p.dst, "5202"), n)
				if err != nil {
					b.Fatal(err)
				}
				rates += rate
			}
			b.ReportMetric(rates/float64(b.N)/1e6, "MB/s")
		})
	}
}

// TestRouterDnatAndSnat: g0 is 10.252.1.77 on bridge 1, both ways.
func TestRouterDnatAndSnat(t *testing.T) {
	lab := newRouterLab(t, topology.NATRule{Type: topology.NATDnatAndSnat, LogicalIP: "10.252.0.10/32", ExternalIP: "10.252.1.77", OutPort: "port1"})
	if src := seenFrom(t, lab.g1, lab.g0, "10.252.1.77:7101", "10.252.0.10:7101"); src != "10.252.1.50" {
		t.Errorf("g0 sees g1 (through the dnat address) from %s, want 10.252.1.50", src)
	}
	if src := seenFrom(t, lab.g0, lab.g1, "10.252.1.50:7102", "10.252.1.50:7102"); src != "10.252.1.77" {
		t.Errorf("g1 sees g0 from %s, want its external address 10.252.1.77", src)
	}
	// Between the router's ports the bridge-0 neighbour is not translated.
	if src := seenFrom(t, lab.g2, lab.g0, "10.252.0.10:7103", "10.252.0.10:7103"); src != "10.252.0.11" {
		t.Errorf("g0 sees g2 from %s", src)
	}
}

// seenFrom dials dial from namespace from, accepts on listen in namespace
// to, and returns the source address the listener saw.
func seenFrom(t *testing.T, from, to, dial, listen string) string {
	t.Helper()
	ln, err := nettest.ListenTCP(to, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- err.Error()
			return
		}
		c.Close()
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
	}()
	c, err := nettest.DialTCP(from, dial, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", dial, from, err)
	}
	c.Close()
	return <-seen
}
