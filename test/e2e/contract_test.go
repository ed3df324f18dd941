package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/topology"
)

// contractLab is the lab both network backends must run alike: two guests
// on one switch, a router to three more switches, a DHCP guest, SNAT
// towards a switch with no route back, an external switch whose host side
// (172.30.19.1) a guest on it reaches, and a switch whose ACLs let a2 open TCP
// connections (allow-related: the replies come back) while nothing opens
// one to a2 (drop).
const contractLab = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10, gateway: 10.0.0.1}]
  - name: a2
    network: [{switch: sw0, ip: 10.0.0.11, gateway: 10.0.0.1}]
  - name: b
    network: [{switch: sw1, ip: dynamic}]
  - name: target
    network: [{switch: sw2, ip: 10.0.2.10}]
  - name: x
    network: [{switch: ext, ip: 172.30.19.10, gateway: 172.30.19.2}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
    sw2: {subnet: 10.0.2.0/24}
    ext: {subnet: 172.30.19.0/24, external: true}
  routers:
    r1:
      ports:
        - {name: r1-sw0, switch: sw0, gateway_ip: 10.0.0.1/24}
        - {name: r1-sw1, switch: sw1, gateway_ip: 10.0.1.1/24}
        - {name: r1-sw2, switch: sw2, gateway_ip: 10.0.2.1/24}
        - {name: r1-ext, switch: ext, gateway_ip: 172.30.19.2/24}
      nat: [{nat_type: snat, logical_ip: 10.0.0.0/23, external_ip: 10.0.2.1}]
      dhcp: [{switch: sw1, exclude_ips: {from: 10.0.1.1, to: 10.0.1.19}}]
  acl:
    switches:
      sw0:
        - {direction: to-lport, priority: 100, match: "ip4.dst == 10.0.0.11 && tcp", action: drop}
        - {direction: from-lport, priority: 200, match: "ip4.src == 10.0.0.11 && tcp", action: allow-related}
`

// TestContract runs the same lab on each network backend with the same
// expectations: pings on a switch and across the router, the DHCP lease,
// the SNAT source, the ACLs' outcomes; on ovn guests resolve each other's
// names through OVN's DNS. Down leaves no namespace or link, and on ovn no
// logical switch or router and no port on the integration bridge.
func TestContract(t *testing.T) {
	nettest.RequireRoot(t)
	for _, backend := range []string{"bridge", "ovn"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "ovn" {
				if _, err := exec.LookPath("ovn-controller"); err != nil {
					testenv.Missing(t, "Open vSwitch and OVN are not installed (openvswitch-switch ovn-central ovn-host)")
				}
			}
			start := time.Now()
			s := startServer(t, "TESTBEDOS_NETWORK="+backend)
			lab := generated(t, s, "contract", contractLab, nil)
			name, dir, st := lab.name, lab.dir, lab.st
			upLog := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
			ns := func(g string) string { return netnsPrefix(name) + g }
			if backend == "ovn" && !strings.Contains(upLog, "router r1: OVN "+st.Routers[0].Namespace+" created") {
				t.Errorf("up did not make the router in OVN:\n%s", upLog)
			}
			if backend == "bridge" && strings.Contains(upLog, "OVN") {
				t.Errorf("the bridge backend's up speaks of OVN:\n%s", upLog)
			}

			if got := guestAddr(t, ns("b"), "eth0"); got != "10.0.1.20/24" {
				t.Errorf("b's eth0 is %q, want the first address after exclude_ips, 10.0.1.20/24\n%s", got, upLog)
			}
			for _, p := range []struct{ from, to string }{
				{"a", "10.0.0.11"}, {"a2", "10.0.0.10"}, {"a", "10.0.1.20"}, {"b", "10.0.0.10"}, {"a", "10.0.2.10"}, {"b", "10.0.2.10"},
				{"a", "172.30.19.10"}, {"x", "172.30.19.1"},
			} {
				if err := nettest.Ping(ns(p.from), net.ParseIP(p.to), 10*time.Second); err != nil {
					t.Errorf("%s → %s: %v", p.from, p.to, err)
				}
			}
			// SNAT: the target sees the router's address; between the
			// inner switches nothing is translated.
			if src := sourceSeen(t, ns("a"), ns("target"), "10.0.2.10:7001"); src != "10.0.2.1" {
				t.Errorf("target sees a's connection from %s, want 10.0.2.1 (SNAT)", src)
			}
			if src := sourceSeen(t, ns("b"), ns("a"), "10.0.0.10:7002"); src != "10.0.1.20" {
				t.Errorf("a sees b's connection from %s, want 10.0.1.20", src)
			}
			// ACLs: a2 opens a TCP connection to a and gets the replies;
			// a cannot open one to a2.
			if src := sourceSeen(t, ns("a2"), ns("a"), "10.0.0.10:7003"); src != "10.0.0.11" {
				t.Errorf("a2 → a (allow-related): %s", src)
			}
			if !blocked(t, ns("a"), ns("a2"), "10.0.0.11:7004") {
				t.Errorf("a → a2 connected through a to-lport drop")
			}
			if backend == "ovn" {
				if got := resolve(t, ns("a"), "10.0.0.1:53", "target"); got != "10.0.2.10" {
					t.Errorf("a resolves target to %q, want 10.0.2.10", got)
				}
			}

			// A server restarted (with the ovn backend: its OVS and OVN
			// daemons too) finds the lab as it was, and it still routes.
			s.stop(t)
			s.start(t)
			for _, p := range []struct{ from, to string }{{"a", "10.0.0.11"}, {"b", "10.0.2.10"}} {
				if err := nettest.Ping(ns(p.from), net.ParseIP(p.to), 15*time.Second); err != nil {
					t.Errorf("after a server restart, %s → %s: %v", p.from, p.to, err)
				}
			}

			// A second up keeps everything; plan then has nothing to do.
			mustSucceed(t, s, name, cmd(api.CmdUp))
			if p, err := s.c.Plan(context.Background(), name); err != nil || !p.Empty() {
				t.Errorf("plan after a second up: %+v, %v", p, err)
			}
			// Apply adds a guest to sw0: it reaches a, and a's ACLs still
			// hold.
			withC := strings.Replace(contractLab, "  - name: x\n", "  - name: c\n    network: [{switch: sw0, ip: 10.0.0.12, gateway: 10.0.0.1}]\n  - name: x\n", 1)
			if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(withC), 0o644); err != nil {
				t.Fatal(err)
			}
			mustSucceed(t, s, name, cmd(api.CmdApply))
			if err := nettest.Ping(ns("c"), net.ParseIP("10.0.0.10"), 10*time.Second); err != nil {
				t.Errorf("after apply, c → a: %v", err)
			}
			if !blocked(t, ns("a"), ns("a2"), "10.0.0.11:7005") {
				t.Errorf("after apply, a → a2 connected through a to-lport drop")
			}
			st = state(t, s, name)

			var ext topology.Switch
			for _, sw := range st.Switches {
				if sw.External != nil {
					ext = sw
				}
			}
			if got := linkAddrs(t, ext.Bridge); !strings.Contains(got, "172.30.19.1/24") {
				t.Errorf("the external switch's host side %s has %s, want 172.30.19.1/24", ext.Bridge, got)
			}
			if !hasTable(t, "", ext.External.Table) {
				t.Errorf("host has no nft table %s for the external switch", ext.External.Table)
			}

			mustSucceed(t, s, name, cmd(api.CmdDown))
			assertNothingLeft(t, st)
			if hasTable(t, "", ext.External.Table) {
				t.Errorf("down left nft table %s", ext.External.Table)
			}
			if backend == "ovn" {
				assertNoOVNLeft(t, s, st.Prefix)
			}
			t.Logf("%s: lab up, checked and down in %s", backend, time.Since(start).Round(time.Millisecond))
		})
	}
}

// blocked reports whether a TCP connection from namespace from to addr,
// where namespace to listens, fails within a second.
func blocked(t *testing.T, from, to, addr string) bool {
	t.Helper()
	ln, err := nettest.ListenTCP(to, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := nettest.DialTCP(from, addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// assertNoOVNLeft checks the server's own OVN and OVS databases for rows
// named with prefix.
func assertNoOVNLeft(t *testing.T, s *server, prefix string) {
	t.Helper()
	run := filepath.Join(s.dataDir, "ovn")
	for _, c := range [][]string{
		{"ovn-nbctl", "--db=unix:" + filepath.Join(run, "ovnnb_db.sock"), "--bare", "--columns=name", "list", "Logical_Switch"},
		{"ovn-nbctl", "--db=unix:" + filepath.Join(run, "ovnnb_db.sock"), "--bare", "--columns=name", "list", "Logical_Router"},
		{"ovn-nbctl", "--db=unix:" + filepath.Join(run, "ovnnb_db.sock"), "--bare", "--columns=_uuid", "list", "DHCP_Options"},
		{"ovs-vsctl", "--db=unix:" + filepath.Join(run, "db.sock"), "list-ports", "br-int"},
		{"ovs-vsctl", "--db=unix:" + filepath.Join(run, "db.sock"), "--bare", "--columns=name", "find", "Bridge", "name!=br-int"},
	} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
		if strings.TrimSpace(string(out)) != "" {
			t.Errorf("down left in OVN/OVS (%s): %s", strings.Join(c[2:], " "), out)
		}
	}
	_ = prefix
}

// resolve asks the DNS server at server, from inside namespace ns, for the
// IPv4 address of name.
func resolve(t *testing.T, ns, server, name string) string {
	t.Helper()
	var conn net.Conn
	err := nettest.InNamespace(ns, func() error {
		var err error
		conn, err = net.Dial("udp4", server)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q, err := dnsmessage.NewName(name + ".")
	if err != nil {
		t.Fatal(err)
	}
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: 4242, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: q, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	req, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for range 10 {
		conn.Write(req)
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		var resp dnsmessage.Message
		if err := resp.Unpack(buf[:n]); err != nil {
			t.Fatalf("DNS answer: %v", err)
		}
		for _, a := range resp.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok {
				return net.IP(r.A[:]).String()
			}
		}
		return ""
	}
	return ""
}
