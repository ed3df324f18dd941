package ovn

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// Two hosts, each a network namespace with its own Open vSwitch and
// ovn-controller, the first also running OVN's databases: a logical
// switch spans them over Geneve (the userspace datapath where the kernel
// has no openvswitch module, the underlay address on an OVS bridge of its
// own), and a guest on each host reaches the other, TCP included (guest
// links at GeneveMTU).
func TestGeneveChassisPair(t *testing.T) {
	testenv.RequireRoot(t, "OVS and OVN run as root")
	if _, err := exec.LookPath("ovn-controller"); err != nil {
		testenv.Missing(t, "Open vSwitch and OVN are not installed (openvswitch-switch ovn-central ovn-host)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := nettest.Prefix(t)
	hosts := []string{p + "ha", p + "hb"}
	for _, h := range hosts {
		nettest.AddNamespace(t, h)
	}
	nettest.Underlay(t, hosts[0], hosts[1], "10.99.0.1/24", "10.99.0.2/24")

	main, err := Open(ctx, Options{Dir: t.TempDir(), Netns: hosts[0], Chassis: p + "a", EncapIP: "10.99.0.1",
		SBListen: []string{"ptcp:6642:10.99.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(main.Close)
	client, err := OpenChassis(ctx, Options{Dir: t.TempDir(), Netns: hosts[1], Chassis: p + "b", EncapIP: "10.99.0.2"}, "tcp:10.99.0.1:6642")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	for i, n := range []*Network{main, client} {
		if err := n.AddUnderlay(ctx, "br-phy", "ul", []string{"10.99.0.1/24", "10.99.0.2/24"}[i]); err != nil {
			t.Fatal(err)
		}
	}

	ls := p + "ls"
	err = main.PutSwitch(ctx, SwitchSpec{Name: ls, Deployment: p, Ports: []PortSpec{
		{Name: p + "a", Addresses: []string{"02:00:00:00:00:0a 10.98.0.10"}},
		{Name: p + "b", Addresses: []string{"02:00:00:00:00:0b 10.98.0.11"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []*Network{main, client} {
		end, guest := p+[]string{"a", "b"}[i], p+[]string{"ga", "gb"}[i]
		nettest.AddNamespace(t, guest)
		if err := nettest.InNamespace(hosts[i], func() error { return nettest.AddVethTo(guest, end, "eth0", "", GeneveMTU) }); err != nil {
			t.Fatal(err)
		}
		mac, ip := []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}[i], []string{"10.98.0.10/24", "10.98.0.11/24"}[i]
		if err := nettest.InNamespace(guest, func() error { return setMACAddrUp("eth0", mac, ip) }); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(nettest.NamespacePath(guest))
		if err != nil {
			t.Fatal(err)
		}
		err = links.TxChecksumOff(int(f.Fd()), "eth0")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.AttachPort(ctx, end, ls, end); err != nil {
			t.Fatal(err)
		}
	}
	if err := nettest.Ping(p+"ga", net.ParseIP("10.98.0.11"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rate, err := nettest.TCPThroughput(p+"ga", p+"gb", "10.98.0.11:7400", 32<<20)
	if err != nil {
		t.Fatalf("TCP across the two chassis: %v", err)
	}
	t.Logf("TCP across two chassis over Geneve: %.0f Mbit/s", rate*8/1e6)
}
