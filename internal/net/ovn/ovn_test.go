package ovn

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// openTest starts this package's own daemons in a folder of the test
// (never the host's), inside a network namespace of the test (their
// br-int must not meet another test's or server's), and stops them at
// cleanup. It returns the namespace's name too.
func openTest(t *testing.T) (*Network, string) {
	t.Helper()
	testenv.RequireRoot(t, "OVS and OVN run as root")
	if _, err := exec.LookPath("ovn-controller"); err != nil {
		testenv.Missing(t, "Open vSwitch and OVN are not installed (openvswitch-switch ovn-central ovn-host)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	host := nettest.Prefix(t) + "host"
	nettest.AddNamespace(t, host)
	n := &Network{netdev: !KernelDatapath(), netns: host}
	dir := t.TempDir()
	n.daemons = &Daemons{Dir: dir, Netns: host}
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range []string{"ovn-controller", "ovs-vswitchd", "ovn-northd"} {
				b, _ := os.ReadFile(filepath.Join(dir, d+".log"))
				e, _ := os.ReadFile(filepath.Join(dir, d+".stderr"))
				b = append(b, e...)
				t.Logf("%s.log:\n%s", d, lastLines(string(b), 15))
			}
		}
	})
	n.ep = n.daemons.Endpoints()
	if err := n.daemons.StartDatabases(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	if err := n.open(ctx, Options{Chassis: "tbtest"}, true); err != nil {
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n, host
}

// Two namespaces bound to two logical ports of one switch ping each other,
// and deleting the switch removes its OVS ports.
func TestSwitchPing(t *testing.T) {
	n, host := openTest(t)
	ctx := context.Background()
	p := nettest.Prefix(t)
	ls := p + "ls"
	err := n.PutSwitch(ctx, SwitchSpec{Name: ls, Deployment: p, Ports: []PortSpec{
		{Name: p + "a", Addresses: []string{"02:00:00:00:00:0a 10.9.0.10"}},
		{Name: p + "b", Addresses: []string{"02:00:00:00:00:0b 10.9.0.11"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.DeleteSwitch(context.Background(), ls) })
	for i, end := range []string{"a", "b"} {
		ns := p + end
		nettest.AddNamespace(t, ns)
		if err := nettest.InNamespace(host, func() error { return nettest.AddVethTo(ns, p+end, "eth0", "", 0) }); err != nil {
			t.Fatal(err)
		}
		mac := []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}[i]
		ip := []string{"10.9.0.10/24", "10.9.0.11/24"}[i]
		if err := nettest.InNamespace(ns, func() error { return setMACAddrUp("eth0", mac, ip) }); err != nil {
			t.Fatal(err)
		}
		if err := n.AttachPort(ctx, p+end, ls, p+end); err != nil {
			t.Fatal(err)
		}
	}
	if err := nettest.Ping(p+"a", net.ParseIP("10.9.0.11"), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if !n.HasSwitch(ls) || len(n.Ports(ls)) != 2 {
		t.Fatalf("switch %v, ports %v", n.HasSwitch(ls), n.Ports(ls))
	}
	if err := n.DeleteSwitch(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, "ports gone", func() bool { return len(n.Ports(ls)) == 0 && !n.HasSwitch(ls) }); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// A daemon that dies is started again, and Close ends every daemon the
// package started.
func TestDaemonsSupervised(t *testing.T) {
	n, _ := openTest(t)
	pid := func(name string) int {
		n.daemons.mu.Lock()
		defer n.daemons.mu.Unlock()
		for _, p := range n.daemons.procs {
			if p.name == name && p.cmd.Process != nil {
				return p.cmd.Process.Pid
			}
		}
		return 0
	}
	first := pid("ovn-northd")
	if first == 0 {
		t.Fatal("no ovn-northd")
	}
	syscall.Kill(first, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := waitFor(ctx, "ovn-northd started again", func() bool { p := pid("ovn-northd"); return p != 0 && p != first }); err != nil {
		t.Fatal(err)
	}
	var pids []int
	n.daemons.mu.Lock()
	for _, p := range n.daemons.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	n.daemons.mu.Unlock()
	if len(pids) != 6 {
		t.Fatalf("%d daemons, want 6 (3 ovsdb-servers, ovn-northd, ovs-vswitchd, ovn-controller)", len(pids))
	}
	n.Close()
	for _, p := range pids {
		if syscall.Kill(p, 0) == nil {
			t.Errorf("pid %d still runs after Close", p)
		}
	}
}

// Without Open vSwitch and OVN installed, Open says what to install.
func TestOpenNotInstalled(t *testing.T) {
	if answers(HostEndpoints().OVS) && answers(HostEndpoints().NB) {
		t.Skip("the host's own OVS and OVN run")
	}
	t.Setenv("PATH", t.TempDir())
	_, err := Open(context.Background(), Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "ovsdb-server") || !strings.Contains(err.Error(), "setup.sh --with-ovn") {
		t.Fatalf("Open without OVS and OVN: %v", err)
	}
}
