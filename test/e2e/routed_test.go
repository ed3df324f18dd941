package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// routedMachines: a on sw0 (static), b on sw1 (DHCP), target on sw2, which
// has no route back to sw0 or sw1: only the router's SNAT lets a and b
// reach it.
const routedMachines = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10, gateway: 10.0.0.1}]
  - name: b
    network: [{switch: sw1, ip: dynamic}]
  - name: target
    network: [{switch: sw2, ip: 10.0.2.10}]
`

const routedNetwork = `network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
    sw2: {subnet: 10.0.2.0/24}
    ext: {subnet: 172.30.9.0/24, external: true}
  routers:
    r1:
      ports:
        - {name: r1-sw0, switch: sw0, gateway_ip: 10.0.0.1/24}
        - {name: r1-sw1, switch: sw1, gateway_ip: 10.0.1.1/24}
        - {name: r1-sw2, switch: sw2, gateway_ip: 10.0.2.1/24}
        - {name: r1-ext, switch: ext, gateway_ip: 172.30.9.2/24}
      static_routes: [{prefix: 192.168.77.0/24, nexthop: 172.30.9.1}]
      nat: [{nat_type: snat, logical_ip: 10.0.0.0/23, external_ip: 10.0.2.1}]
      dhcp: [{switch: sw1, exclude_ips: {from: 10.0.1.1, to: 10.0.1.19}}]
`

// The same in the original's spelling: network.ovn, and the external
// switch as a switch port with localnet (its host side is 172.16.1.1/24).
const routedNetworkOVN = `network:
  ovn:
    switches:
      sw0: {subnet: 10.0.0.0/24}
      sw1: {subnet: 10.0.1.0/24}
      sw2: {subnet: 10.0.2.0/24}
      public:
        subnet: 172.16.1.0/24
        ports: [{name: ls-public, localnet: {network_name: public}}]
    routers:
      lr0:
        ports:
          - {name: lr0-sw0, mac: "00:00:00:00:ff:01", gateway_ip: 10.0.0.1/24, switch: sw0}
          - {name: lr0-sw1, mac: "00:00:00:00:ff:02", gateway_ip: 10.0.1.1/24, switch: sw1}
          - {name: lr0-sw2, gateway_ip: 10.0.2.1/24, switch: sw2}
          - {name: lr0-public, gateway_ip: 172.16.1.200/24, switch: public, set_gateway_chassis: main}
        static_routes: [{prefix: 192.168.77.0/24, nexthop: 172.16.1.1}]
        nat: [{nat_type: snat, external_ip: 10.0.2.1, logical_ip: 10.0.0.0/23}]
        dhcp:
          - switch: sw1
            exclude_ips: {from: 10.0.1.1, to: 10.0.1.19}
`

// TestRoutedLab: two switches joined by a router, a DHCP guest, SNAT to a
// third switch with no route back, an external switch; both spellings
// deploy the same, and down leaves nothing.
func TestRoutedLab(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	for _, tc := range []struct{ spelling, network, router, extAddr string }{
		{"network.routers", routedNetwork, "r1", "172.30.9.1/24"},
		{"network.ovn", routedNetworkOVN, "lr0", "172.16.1.1/24"},
	} {
		t.Run(tc.spelling, func(t *testing.T) {
			lab := generated(t, s, "routed", routedMachines+tc.network, nil)
			name, st := lab.name, lab.st
			if len(st.Routers) != 1 {
				t.Fatalf("state routers: %+v", st.Routers)
			}
			r := st.Routers[0]
			log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
			for _, want := range []string{"routers: 1 router, 1 external switch", "router " + tc.router + ": created", "eth0 leased 10.0.1.20/24 (router 10.0.1.1)"} {
				if !strings.Contains(log, want) {
					t.Errorf("up log lacks %q:\n%s", want, log)
				}
			}
			ns := func(g string) string { return netnsPrefix(name) + g }
			if got := guestAddr(t, ns("b"), "eth0"); got != "10.0.1.20/24" {
				t.Fatalf("b's eth0 is %q, want the first address after exclude_ips, 10.0.1.20/24", got)
			}
			for _, p := range []struct{ from, to string }{
				{"a", "10.0.1.20"}, {"b", "10.0.0.10"}, {"a", "10.0.2.10"}, {"b", "10.0.2.10"}, {"a", "10.0.1.1"},
			} {
				if err := nettest.Ping(ns(p.from), net.ParseIP(p.to), 5*time.Second); err != nil {
					t.Errorf("%s → %s: %v", p.from, p.to, err)
				}
			}
			// The target sees the router's address, not a's or b's.
			for _, from := range []string{"a", "b"} {
				if src := sourceSeen(t, ns(from), ns("target"), "10.0.2.10:7001"); src != "10.0.2.1" {
					t.Errorf("target sees %s's connection from %s, want 10.0.2.1 (SNAT)", from, src)
				}
			}
			// Between the inner switches nothing is translated.
			if src := sourceSeen(t, ns("a"), ns("b"), "10.0.1.20:7002"); src != "10.0.0.10" {
				t.Errorf("b sees a's connection from %s, want 10.0.0.10", src)
			}
			// A restarted daemon serves DHCP again, with the leases it gave.
			s.stop(t)
			s.start(t)
			if got, _, err := hostnet.NewHost(nil).Lease(context.Background(), nettest.NamespacePath(ns("b")), "eth0"); err != nil || got != "10.0.1.20/24" {
				t.Errorf("lease after a server restart: %s, %v; want 10.0.1.20/24 again", got, err)
			}
			if !hasTable(t, r.Namespace, r.Table) {
				t.Errorf("router namespace %s has no nft table %s", r.Namespace, r.Table)
			}
			var extBridge, extTable string
			for _, sw := range st.Switches {
				if sw.External != nil {
					extBridge, extTable = sw.Bridge, sw.External.Table
					if sw.External.Address != tc.extAddr {
						t.Errorf("external side %s, want %s", sw.External.Address, tc.extAddr)
					}
				}
			}
			t.Cleanup(func() { dropTable(extTable) })
			if !hasTable(t, "", extTable) {
				t.Errorf("host has no nft table %s for the external switch", extTable)
			}
			if got := linkAddrs(t, extBridge); !strings.Contains(got, tc.extAddr) {
				t.Errorf("external bridge %s has %s, want %s", extBridge, got, tc.extAddr)
			}

			mustSucceed(t, s, name, cmd(api.CmdDown))
			assertNothingLeft(t, st)
			if hasTable(t, "", extTable) {
				t.Errorf("down left nft table %s", extTable)
			}
		})
	}
}

// TestRouteNexthopOnNoSwitchIsExplained: a next hop no port reaches is
// accepted, as OVN accepts it; the state marks the route unused and says
// why, naming file, line and field.
func TestRouteNexthopOnNoSwitchIsExplained(t *testing.T) {
	s := startServer(t)
	unreachable := strings.Replace(routedNetwork, "nexthop: 172.30.9.1", "nexthop: 192.168.9.1", 1)
	lab := generated(t, s, "badroute", routedMachines+unreachable, nil)
	st := lab.st
	if got := st.Routers[0].StaticRoutes[0].Unused; !strings.Contains(got, "no port of r1 reaches it") {
		t.Errorf("route unused %q", got)
	}
	if len(st.Notes) != 1 || !strings.HasPrefix(st.Notes[0], "kvm-compose.yaml:21: network.routers.r1.static_routes[0]: route 192.168.77.0/24 via 192.168.9.1") {
		t.Errorf("notes %q", st.Notes)
	}
}

// sourceSeen connects from namespace from to addr, served in namespace to,
// and returns the source address the listener saw.
func sourceSeen(t *testing.T, from, to, addr string) string {
	t.Helper()
	seen := listenOnce(t, to, addr)
	c, err := nettest.DialTCP(from, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	c.Close()
	return seen()
}

// listenOnce listens on addr in namespace ns for one connection; the
// function it returns waits for it and gives the source address seen (or
// the accept error's text).
func listenOnce(t *testing.T, ns, addr string) func() string {
	t.Helper()
	ln, err := nettest.ListenTCP(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		// Closed before the answer: the caller may listen on addr again
		// right away.
		ln.Close()
		if err != nil {
			seen <- err.Error()
			return
		}
		c.Close()
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
	}()
	t.Cleanup(func() { ln.Close() })
	return func() string { return <-seen }
}

// guestAddr is the IPv4 address of ifname in namespace.
func guestAddr(t *testing.T, namespace, ifname string) string {
	t.Helper()
	h, closeFn := nsHandle(t, namespace)
	defer closeFn()
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("%s in %s has no address (%v)", ifname, namespace, err)
	}
	return addrs[0].IPNet.String()
}

func linkAddrs(t *testing.T, name string) string {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err.Error()
	}
	addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
	return fmt.Sprint(addrs)
}

func nsHandle(t *testing.T, namespace string) (*netlink.Handle, func()) {
	t.Helper()
	n, err := netns.GetFromPath(nettest.NamespacePath(namespace))
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(n)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	return h, func() { h.Close(); n.Close() }
}

// hasTable reports whether an ip-family nft table exists in namespace ("":
// the host's).
func hasTable(t *testing.T, namespace, table string) bool {
	t.Helper()
	var opts []nftables.ConnOption
	if namespace != "" {
		n, err := netns.GetFromPath(nettest.NamespacePath(namespace))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		opts = append(opts, nftables.WithNetNSFd(int(n)))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == table {
			return true
		}
	}
	return false
}

// TestRoutedLabExample deploys examples/routed-lab as it is, after building
// the image its README builds (busybox:local); laptop reaches the host's
// side of ext (172.30.0.1) by the default route and the SNAT, and the box
// container reaches everyone through the router.
func TestRoutedLabExample(t *testing.T) {
	nettest.RequireRoot(t)
	cli := dockertest.Client(t)
	dockertest.ImageAs(t, cli, "busybox:local")
	s := startServer(t)
	files := map[string]string{}
	for _, f := range []string{"web-setup.sh", "show-lease.sh", "box-setup.sh"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "routed-lab", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(b)
	}
	yaml, err := os.ReadFile("../../examples/routed-lab/kvm-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := project(t, string(yaml), files)
	name := deployment(t, s, "lab", dir)
	t.Cleanup(func() { removeContainers(cli, name, "box") })
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)
	for _, sw := range st.Switches {
		if sw.External != nil {
			t.Cleanup(func() { dropTable(sw.External.Table) })
		}
	}
	log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(log, "[laptop] laptop leased eth0") || !strings.Contains(log, "10.0.1.10/24") {
		t.Errorf("the laptop's setup script does not show its lease:\n%s", log)
	}
	for _, want := range []string{"[box] box (container) on 10.0.0.20/24", "[box] box reaches r1 on sw1"} {
		if !strings.Contains(log, want) {
			t.Errorf("up log lacks %q:\n%s", want, log)
		}
	}
	ns := func(g string) string { return netnsPrefix(name) + g }
	for _, p := range []struct{ from, to string }{
		{"web", "10.0.1.10"}, {"laptop", "10.0.0.10"}, {"web", "192.168.50.10"}, {"laptop", "172.30.0.1"},
		{"web", "10.0.0.20"}, {"laptop", "10.0.0.20"},
	} {
		if err := nettest.Ping(ns(p.from), net.ParseIP(p.to), 5*time.Second); err != nil {
			t.Errorf("%s → %s: %v", p.from, p.to, err)
		}
	}
	for _, to := range []string{"10.0.0.10", "10.0.1.10", "192.168.50.10", "172.30.0.1"} {
		if out, ok := execOK(t, s, name, "box", "ping", "-c", "1", "-W", "5", to); !ok {
			t.Errorf("box → %s: %s", to, out)
		}
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	if left := hostTables(t, st.Prefix); len(left) > 0 {
		t.Errorf("down left nft tables %v", left)
	}
}

// dropTable deletes a host nft table a failed test may leave.
func dropTable(name string) {
	conn, err := nftables.New()
	if err != nil {
		return
	}
	tables, _ := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	for _, tb := range tables {
		if tb.Name == name {
			conn.DelTable(tb)
			_ = conn.Flush()
		}
	}
}
