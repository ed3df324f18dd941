package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// routedACLNetwork is routedNetwork on its own external subnet, with an
// ACL on sw2 that drops one TCP port to the target.
var routedACLNetwork = strings.ReplaceAll(routedNetwork, "172.30.9.", "172.30.19.") + `  acl:
    switches:
      sw2:
        - {direction: to-lport, priority: 100, match: "tcp.dst == 7009", action: drop}
`

// routedACLChange adds a static route, narrows the SNAT to sw0 (so b, on
// sw1, no longer reaches the target, which has no route back) and adds on
// sw0 a to-lport rule that drops ICMP from sw1's subnet: traffic the router
// delivers to a.
var routedACLChange = strings.Replace(strings.Replace(routedACLNetwork,
	"logical_ip: 10.0.0.0/23", "logical_ip: 10.0.0.0/24", 1),
	"      static_routes: [{prefix: 192.168.77.0/24, nexthop: 172.30.19.1}]\n",
	"      static_routes: [{prefix: 192.168.77.0/24, nexthop: 172.30.19.1}, {prefix: 192.168.78.0/24, nexthop: 172.30.19.1}]\n", 1) +
	`      sw0:
        - {direction: to-lport, priority: 200, match: "ip4.src == 10.0.1.0/24 && icmp4", action: drop}
`

// TestApplyRoutedLab: up a routed lab with an ACL; add a static route,
// change the NAT rule and add an ACL drop rule; the plan names the router and the ACL table and no
// guest; apply re-makes the router and rewrites the table; the guests keep
// their namespaces and b its lease; the new rule drops what it names
// (ICMP the router delivers from sw1 to a) and routing still works.
func TestApplyRoutedLab(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "rapply", routedMachines+routedACLNetwork, nil)
	name, dir, st := lab.name, lab.dir, lab.st
	cleanupTables(t, st)
	mustSucceed(t, s, name, cmd(api.CmdUp))
	ns := func(g string) string { return netnsPrefix(name) + g }
	inodes := map[string]uint64{}
	for _, g := range st.Guests {
		inodes[g.Name] = inode(t, nettest.NamespacePath(g.Netns.Namespace))
	}
	if err := nettest.Ping(ns("b"), net.ParseIP("10.0.0.10"), 5*time.Second); err != nil {
		t.Fatalf("b → a before apply: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(routedMachines+routedACLChange), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := s.c.Plan(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, string(c.Op)+" "+string(c.Kind)+" "+c.Name)
	}
	aclTable := topology.ACLTableName(name)
	if want := []string{"remake router r1", "update acl " + aclTable}; !slices.Equal(got, want) {
		t.Fatalf("plan %v, want %v (%+v)", got, want, p.Changes)
	}
	if why := p.Changes[0].Why; !strings.Contains(why, "192.168.78.0/24") || !strings.Contains(why, "nat[0].logical_ip 10.0.0.0/23 → 10.0.0.0/24") {
		t.Errorf("why r1 is re-made: %q", why)
	}
	code, out := kvmCompose(t, s, dir, "--project-name", name, "plan")
	if code != 0 || !strings.Contains(out, "~ router r1 (re-made)") || !strings.Contains(out, "~ acl "+aclTable+" (rewritten in place)") {
		t.Errorf("kvm-compose plan (exit %d):\n%s", code, out)
	}
	log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdApply)), "\n")
	for _, w := range []string{"remove routers", "router r1: removed", "router r1: created", "acl: table bridge " + aclTable + " rewritten", "guest a: already up", "guest b: already up"} {
		if !strings.Contains(log, w) {
			t.Errorf("apply log lacks %q:\n%s", w, log)
		}
	}
	for _, g := range st.Guests {
		if got := inode(t, nettest.NamespacePath(g.Netns.Namespace)); got != inodes[g.Name] {
			t.Errorf("guest %s's namespace was re-made", g.Name)
		}
	}
	if got := guestAddr(t, ns("b"), "eth0"); got != "10.0.1.20/24" {
		t.Errorf("b's address after apply %s", got)
	}
	if !hasRoute(t, st.Routers[0].Namespace, "192.168.78.0/24") {
		t.Error("the router has no route to 192.168.78.0/24 after apply")
	}
	// The new rule: ICMP from sw1 delivered to a is dropped, both ways
	// (a's echo replies come back from sw1 too).
	for _, p := range []struct{ from, to string }{{"b", "10.0.0.10"}, {"a", "10.0.1.20"}} {
		if err := nettest.Ping(ns(p.from), net.ParseIP(p.to), time.Second); err == nil {
			t.Errorf("%s → %s passes the new drop rule", p.from, p.to)
		}
	}
	// Routing and SNAT still work; the old rule still drops its port.
	for _, p := range []struct{ from, to string }{{"a", "10.0.2.10"}, {"a", "10.0.0.1"}, {"b", "10.0.1.1"}, {"b", "10.0.2.1"}} {
		if err := nettest.Ping(ns(p.from), net.ParseIP(p.to), 5*time.Second); err != nil {
			t.Errorf("after apply %s → %s: %v", p.from, p.to, err)
		}
	}
	if src := sourceSeen(t, ns("a"), ns("target"), "10.0.2.10:7001"); src != "10.0.2.1" {
		t.Errorf("target sees a from %s, want 10.0.2.1 (SNAT)", src)
	}
	// The narrowed SNAT no longer covers b: the target cannot answer it.
	if err := nettest.Ping(ns("b"), net.ParseIP("10.0.2.10"), time.Second); err == nil {
		t.Error("b reaches the target although the new NAT rule does not cover sw1")
	}
	if c, err := nettest.DialTCP(ns("a"), "10.0.2.10:7009", time.Second); err == nil {
		c.Close()
		t.Error("the first rule no longer drops tcp 7009")
	}
	if p, err := s.c.Plan(ctx, name); err != nil || !p.Empty() {
		t.Errorf("plan after apply: %+v, %v", p, err)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	assertNoTables(t, st)
}

// TestRestoreRoutedLab: the server stops; the guests', router's and
// bridges' namespaces and links and the deployment's nft tables are
// deleted by hand, as a reboot does; at start the server's own up brings
// the routed lab back and b gets its lease (the same address) again.
func TestRestoreRoutedLab(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "rrestore", routedMachines+routedACLNetwork, nil)
	name, st := lab.name, lab.st
	cleanupTables(t, st)
	mustSucceed(t, s, name, cmd(api.CmdUp))
	ctx := context.Background()
	d, _ := s.c.Deployment(ctx, name)
	upID := *d.LastActionUUID

	s.stop(t)
	removeByHand(t, st)
	dropTable(externalOf(st).External.Table)
	dropBridgeTable(topology.ACLTableName(name))
	s.start(t)

	restoreID, log := restoreLog(t, s, name, upID)
	for _, w := range []string{"restore: after a restart, missing: acl table " + topology.ACLTableName(name), "router r1: namespace " + st.Routers[0].Namespace,
		"switch ext (external)", "router r1: created", "eth0 leased 10.0.1.20/24"} {
		if !strings.Contains(log, w) {
			t.Errorf("restore log lacks %q:\n%s", w, log)
		}
	}
	ns := func(g string) string { return netnsPrefix(name) + g }
	if got := guestAddr(t, ns("b"), "eth0"); got != "10.0.1.20/24" {
		t.Errorf("b's address after restore %s, want its lease 10.0.1.20/24 again", got)
	}
	for _, p := range []struct{ from, to string }{{"a", "10.0.1.20"}, {"b", "10.0.0.10"}, {"b", "10.0.2.10"}} {
		if err := nettest.Ping(ns(p.from), net.ParseIP(p.to), 5*time.Second); err != nil {
			t.Errorf("after restore %s → %s: %v", p.from, p.to, err)
		}
	}
	ext := externalOf(st)
	if !hasTable(t, "", ext.External.Table) || !strings.Contains(linkAddrs(t, ext.Bridge), "172.30.19.1/24") {
		t.Errorf("the external side is not back: table %s, bridge %s has %s", ext.External.Table, ext.Bridge, linkAddrs(t, ext.Bridge))
	}
	if c, err := nettest.DialTCP(ns("a"), "10.0.2.10:7009", time.Second); err == nil {
		c.Close()
		t.Error("after restore the ACL does not drop tcp 7009")
	}
	// Everything is there now: a restart changes nothing.
	s.stop(t)
	s.start(t)
	time.Sleep(300 * time.Millisecond)
	if d, _ = s.c.Deployment(ctx, name); *d.LastActionUUID != restoreID || !d.State.Is(api.StateUp) {
		t.Errorf("a restart with nothing missing started an action or changed the state: %+v", d)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	assertNoTables(t, st)
}

func externalOf(st topology.State) topology.Switch {
	for _, sw := range st.Switches {
		if sw.External != nil {
			return sw
		}
	}
	return topology.Switch{}
}

// cleanupTables drops the deployment's host nft tables should the test
// fail before down.
func cleanupTables(t *testing.T, st topology.State) {
	t.Cleanup(func() {
		dropTable(externalOf(st).External.Table)
		dropBridgeTable(topology.ACLTableName(st.Deployment))
	})
}

func assertNoTables(t *testing.T, st topology.State) {
	t.Helper()
	if hasTable(t, "", externalOf(st).External.Table) {
		t.Error("down left the external switch's nft table")
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := conn.ListTablesOfFamily(nftables.TableFamilyBridge)
	for _, tb := range tables {
		if tb.Name == topology.ACLTableName(st.Deployment) {
			t.Error("down left the ACL table")
		}
	}
}

func dropBridgeTable(name string) {
	conn, err := nftables.New()
	if err != nil {
		return
	}
	tables, _ := conn.ListTablesOfFamily(nftables.TableFamilyBridge)
	for _, tb := range tables {
		if tb.Name == name {
			conn.DelTable(tb)
			_ = conn.Flush()
		}
	}
}

// hasRoute reports whether namespace has a route to dst.
func hasRoute(t *testing.T, namespace, dst string) bool {
	t.Helper()
	n, err := netns.GetFromPath(nettest.NamespacePath(namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	h, err := netlink.NewHandleAt(n)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == dst {
			return true
		}
	}
	return false
}
