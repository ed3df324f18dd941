package engine_test

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

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/aclnft"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// aclHost is an nsHost whose network also applies ACLs, inside the host's
// namespace: the table is made where the bridge is.
type aclHost struct{ *nsHost }

func (h aclHost) Network() engine.Network { return aclNetwork{nsNetwork{ns: h.ns}} }

type aclNetwork struct{ nsNetwork }

func (n aclNetwork) EnsureACLTable(ctx context.Context, spec engine.ACLTableSpec) (created bool, err error) {
	err = n.in(func() error { created, err = aclnft.EnsureTable(ctx, spec); return err })
	return created, err
}
func (n aclNetwork) DeleteACLTable(ctx context.Context, name string) error {
	return n.in(func() error { return aclnft.DeleteTable(ctx, name) })
}

func (n aclNetwork) HasACLTable(ctx context.Context, name string) (ok bool, err error) {
	err = n.in(func() error { ok, err = aclnft.HasTable(ctx, name); return err })
	return ok, err
}

func (n aclNetwork) ACLReplies(ctx context.Context) string {
	return hostnet.NewHost(nil).ACLReplies(ctx)
}

var _ engine.ACLs = aclNetwork{}

type oneHost struct{ h aclHost }

func (o oneHost) List() []topology.Host { return []topology.Host{{Name: o.h.name, Main: true}} }
func (o oneHost) Host(name string) (engine.Host, error) {
	if name != o.h.name {
		return nil, fmt.Errorf("host %s is not in the cluster", name)
	}
	return o.h, nil
}

// bridgeTables lists the bridge-family nftables tables of a namespace.
func bridgeTables(t *testing.T, ns string) []string {
	t.Helper()
	var names []string
	err := nettest.InNamespace(ns, func() error {
		conn, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := conn.ListTablesOfFamily(nftables.TableFamilyBridge)
		for _, tb := range tables {
			names = append(names, tb.Name)
		}
		return err
	})
	if err != nil {
		t.Fatalf("list tables in %s: %v", ns, err)
	}
	return names
}

// TestACLsFilterExactlyWhatTheyName brings three netns guests a, b, c up on
// one switch with the real kernel, once with a drop rule and once with
// apply_deny_all and an allow-related rule, and checks which pings and TCP
// connections pass; down leaves no table.
func TestACLsFilterExactlyWhatTheyName(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	host := aclHost{newNSCluster(t, prefix, 1)[0]}
	const a, b, c = "10.0.0.10", "10.0.0.11", "10.0.0.12"
	machines := fmt.Sprintf(`machines:
  - {name: a, network: {switch: sw0, ip: %s}}
  - {name: b, network: {switch: sw0, ip: %s}}
  - {name: c, network: {switch: sw0, ip: %s}}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`, a, b, c)
	tests := []struct {
		name  string
		acl   string
		flows []flow
	}{
		{"drop ICMP from a to b", `  acl:
    switches:
      sw0:
        - {direction: to-lport, priority: 100, match: "ip4.src == '10.0.0.10' && ip4.dst == 10.0.0.11 && icmp4", action: drop}
        - {direction: from-lport, priority: 10, match: 'inport == "c" && tcp.dst == 8081', action: reject}
`, []flow{
			{"a", b, 0, false}, {"c", b, 0, true}, {"a", b, 8080, true}, {"a", c, 0, true}, {"b", a, 0, false},
			{"c", b, 8080, true}, {"c", b, 8081, false}, {"a", b, 8081, true},
		}},
		{"deny all but a to b", `  acl:
    apply_deny_all: true
    switches:
      sw0:
        - {direction: to-lport, priority: 10, match: "ip4.src == 10.0.0.10 && outport == \"b\" && (icmp4 || tcp.dst == 8080)", action: allow-related}
`, []flow{
			{"a", b, 0, true}, {"a", b, 8080, true}, {"c", b, 0, false}, {"a", c, 0, false}, {"c", a, 0, false},
			// The reply rule is stateless: it lets replies' shape through
			// (so b's own pings to a too), not new connections from b.
			{"b", a, 8080, false}, {"a", b, 8081, false},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runFlows(t, host, fmt.Sprintf("acl%d-%s", i, prefix), map[string]string{"kvm-compose.yaml": machines + tt.acl}, tt.flows)
		})
	}
}

// TestSecurityLabExample deploys examples/security-lab and checks what its
// README promises.
func TestSecurityLabExample(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	host := aclHost{newNSCluster(t, prefix, 1)[0]}
	files := map[string]string{}
	for _, f := range []string{"kvm-compose.yaml", "victim-setup.sh"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", "security-lab", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(data)
	}
	const attacker, victim, monitor = "10.0.0.66", "10.0.0.20", "10.0.0.30"
	runFlows(t, host, "sec-"+prefix, files, []flow{
		{"monitor", victim, 0, true}, {"monitor", victim, 22, true}, {"monitor", attacker, 0, true},
		{"attacker", victim, 80, true}, {"attacker", victim, 443, true},
		{"attacker", victim, 0, false}, {"attacker", victim, 22, false},
		{"attacker", monitor, 8080, false}, {"victim", attacker, 0, false}, {"victim", monitor, 8080, false},
		// An echo request has the shape of a reply to the monitor's
		// allow-related pings, but conntrack knows no such connection.
		{"attacker", monitor, 0, false},
	})
}

// flow is one exchange: a ping, or a TCP connection to a port.
type flow struct {
	from, to string
	tcp      int // a TCP port, or 0 for a ping
	pass     bool
}

// runFlows brings up a deployment of files on host, checks the flows, and
// takes it down again, checking that no nftables table is left.
func runFlows(t *testing.T, host aclHost, name string, files map[string]string, flows []flow) {
	t.Helper()
	dir := t.TempDir()
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := api.Deployment{Name: name, ProjectLocation: dir}
	t.Cleanup(func() { nettest.RemoveAll("tbos." + d.Name + ".") })
	e := engine.New(engine.Options{Hosts: oneHost{host}, Records: &engine.MemoryRecords{}})
	ctx := context.Background()
	log := &guesttest.Log{}
	if err := e.GenerateArtefacts(ctx, d, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Down(context.Background(), d, &guesttest.Log{}) })
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatalf("up: %v\n%s", err, log.Text())
	}
	if !strings.Contains(log.Text(), "acl: table bridge "+topology.ACLTableName(d.Name)+" created") {
		t.Errorf("log has no acl line:\n%s", log.Text())
	}
	if strings.Contains(files["kvm-compose.yaml"], "allow-related") && !strings.Contains(log.Text(), "acl: allow-related is state") {
		t.Errorf("the log does not say how allow-related lets replies through:\n%s", log.Text())
	}
	rec, _ := e.Deployed(ctx, d.Name)
	if _, ok := rec.Hosts[host.name].ACLTables[topology.ACLTableName(d.Name)]; !ok {
		t.Errorf("record has no ACL table: %+v", rec.Hosts[host.name])
	}
	st, err := topology.ReadState(topology.StatePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	nsOf := map[string]string{}
	for _, g := range st.Guests {
		nsOf[g.Name] = g.Netns.Namespace
		nsOf[strings.Split(g.Interfaces[0].Address, "/")[0]] = g.Netns.Namespace
	}
	for _, f := range flows {
		var err error
		if f.tcp != 0 {
			err = tcpConnect(nsOf[f.from], nsOf[f.to], f.to, f.tcp)
		} else {
			// Time for the first ARP when it should pass.
			wait := time.Second
			if f.pass {
				wait = 3 * time.Second
			}
			err = nettest.Ping(nsOf[f.from], net.ParseIP(f.to), wait)
		}
		what := "ICMP"
		if f.tcp != 0 {
			what = fmt.Sprintf("TCP port %d", f.tcp)
		}
		switch {
		case f.pass && err != nil:
			t.Errorf("%s %s → %s should pass: %v", what, f.from, f.to, err)
		case !f.pass && err == nil:
			t.Errorf("%s %s → %s should be dropped, but got through", what, f.from, f.to)
		}
	}
	if err := e.Down(ctx, d, log); err != nil {
		t.Fatalf("down: %v\n%s", err, log.Text())
	}
	if left := bridgeTables(t, host.ns); len(left) > 0 {
		t.Errorf("down left nftables tables %v", left)
	}
	if t.Failed() {
		t.Logf("log:\n%s", log.Text())
	}
}

// tcpConnect opens a listener on to:port and connects from the from
// namespace, exchanging one byte.
func tcpConnect(from, to, ip string, port int) error {
	addr := fmt.Sprintf("%s:%d", ip, port)
	ln, err := nettest.ListenTCP(to, addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte{1})
			c.Close()
		}
	}()
	conn, err := nettest.DialTCP(from, addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	return err
}
