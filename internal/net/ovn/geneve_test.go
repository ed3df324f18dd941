package ovn

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// Two hosts, each a network namespace with its own Open vSwitch and
// ovn-controller, the first also running OVN's databases: the second
// reaches the southbound database over SSL, each side trusting only the
// other's self-signed certificate (as the cluster pins them); a logical
// switch spans them over Geneve (the userspace datapath where the kernel
// has no openvswitch module, the underlay address moved onto an OVS bridge
// of its own and back at Close), and a guest on each host reaches the
// other, TCP included (guest links at GeneveMTU). Closing the second
// removes its chassis from the southbound database.
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
	mainTLS, clientTLS := pinnedPair(t)

	mainDir := t.TempDir()
	main, err := Open(ctx, Options{Dir: mainDir, Netns: hosts[0], Chassis: p + "a", EncapIP: "10.99.0.1",
		SBListen: []string{"pssl:6642:10.99.0.1"}, TLS: mainTLS, Underlay: &Underlay{NIC: "ul", CIDR: "10.99.0.1/24"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(main.Close)
	clientDir := t.TempDir()
	client, err := OpenChassis(ctx, Options{Dir: clientDir, Netns: hosts[1], Chassis: p + "b", EncapIP: "10.99.0.2",
		TLS: clientTLS, Underlay: &Underlay{NIC: "ul", CIDR: "10.99.0.2/24"}}, "ssl:10.99.0.1:6642")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)

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

	sb := "--db=unix:" + filepath.Join(mainDir, "ovnsb_db.sock")
	if out, _ := exec.Command("ovn-sbctl", sb, "--bare", "--columns=name", "list", "Chassis").Output(); !strings.Contains(string(out), p+"b") {
		t.Fatalf("chassis %s is not in the southbound database: %s", p+"b", out)
	}
	client.Close()
	if out, _ := exec.Command("ovn-sbctl", sb, "--bare", "--columns=name", "list", "Chassis").Output(); strings.Contains(string(out), p+"b") {
		log, _ := os.ReadFile(filepath.Join(clientDir, "ovn-controller.log"))
		t.Errorf("chassis %s is left in the southbound database after Close: %s\n%s", p+"b", out, lastLines(string(log), 10))
	}
	var addrs string
	nettest.InNamespace(hosts[1], func() error {
		out, _ := exec.Command("ip", "-o", "addr", "show", "dev", "ul").Output()
		addrs = string(out)
		return nil
	})
	if !strings.Contains(addrs, "10.99.0.2/24") {
		t.Errorf("the underlay address is not back on its link after Close: %s", addrs)
	}
}

// pinnedPair makes two self-signed identities (as the cluster's hosts
// have) and the SSL files of each side, trusting only the other's
// certificate.
func pinnedPair(t *testing.T) (a, b *TLSFiles) {
	t.Helper()
	var dirs [2]string
	for i := range dirs {
		dirs[i] = t.TempDir()
		if _, err := tlsid.LoadOrCreate(dirs[i], tlsid.DefaultNames("h", nil)); err != nil {
			t.Fatal(err)
		}
	}
	files := func(own, peer string) *TLSFiles {
		return &TLSFiles{Key: filepath.Join(own, tlsid.KeyFile), Cert: filepath.Join(own, tlsid.CertFile), CA: filepath.Join(peer, tlsid.CertFile)}
	}
	return files(dirs[0], dirs[1]), files(dirs[1], dirs[0])
}
