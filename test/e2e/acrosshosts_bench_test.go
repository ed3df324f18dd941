package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/testenv"
)

// acrossLab is guest p1 on the main (%[1]s) and p2 on client c1, on one
// switch; acrossRoutedLab adds q2 on c1 behind a router (distributed: ovn
// only, the bridge backend's routers run on the main alone).
const (
	acrossLab = `machines:
  - {name: p1, host: %[1]s, network: [{switch: sw0, ip: 10.127.0.10}]}
  - {name: p2, host: c1, network: [{switch: sw0, ip: 10.127.0.11}]}
network:
  switches:
    sw0: {subnet: 10.127.0.0/24}
`
	acrossRoutedLab = `machines:
  - {name: p1, host: %[1]s, network: [{switch: sw0, ip: 10.127.0.10, gateway: 10.127.0.1}]}
  - {name: p2, host: c1, network: [{switch: sw0, ip: 10.127.0.11, gateway: 10.127.0.1}]}
  - {name: q2, host: c1, network: [{switch: sw1, ip: 10.127.1.11, gateway: 10.127.1.1}]}
network:
  switches:
    sw0: {subnet: 10.127.0.0/24}
    sw1: {subnet: 10.127.1.0/24}
  routers:
    r1:
      ports:
        - {switch: sw0, gateway_ip: 10.127.0.1/24}
        - {switch: sw1, gateway_ip: 10.127.1.1/24}
`
)

// BenchmarkAcrossHosts measures the two network backends between hosts: a
// main and one client, each a server in its own network namespace on a
// test bridge (the underlay), a netns guest on each, on one switch: the
// bridge backend joins the hosts with a kernel VXLAN link, the ovn backend
// with Geneve from OVS (whose datapath, userspace here, is logged with the
// tunnel ports it made). Metrics per backend:
//
//	rtt-us, tcp-mbit (one switch over the tunnel)
//	routed-rtt-us, routed-tcp-mbit (ovn: across its distributed router to
//	a guest on the client's other switch)
//
//	go test -run '^$' -bench AcrossHosts -benchtime 1x ./test/e2e/
func BenchmarkAcrossHosts(b *testing.B) {
	nettest.RequireRoot(b)
	for _, backend := range []string{"bridge", "ovn"} {
		b.Run("backend="+backend, func(b *testing.B) {
			start := time.Now()
			lab := acrossLab
			if backend == "ovn" {
				if _, err := exec.LookPath("ovn-controller"); err != nil {
					testenv.Missing(b, "Open vSwitch and OVN are not installed")
				}
				lab = acrossRoutedLab
			}
			main, client, clientNS := twoHosts(b, backend)
			name, run := benchLab(b, main, fmt.Sprintf(lab, "xmain"))
			prefix := state(b, main, name).Prefix
			b.Cleanup(func() { leftoversIn(b, clientNS, prefix, false) })
			if err := run(api.CmdUp); err != nil {
				b.Fatal(err)
			}
			p1 := guestNS(b, main, netnsPrefix(name)+"p1")
			rtt, rate := measurePair(b, p1, guestNS(b, client, netnsPrefix(name)+"p2"), "10.127.0.11")
			b.ReportMetric(float64(rtt.Microseconds()), "rtt-us")
			b.ReportMetric(rate*8/1e6, "tcp-mbit")
			if backend == "ovn" {
				rrtt, rrate := measurePair(b, p1, guestNS(b, client, netnsPrefix(name)+"q2"), "10.127.1.11")
				b.ReportMetric(float64(rrtt.Microseconds()), "routed-rtt-us")
				b.ReportMetric(rrate*8/1e6, "routed-tcp-mbit")
			}
			logDatapath(b, backend, main, client, clientNS)
			b.Logf("%s: two hosts, a lab up and measured in %s", backend, time.Since(start).Round(time.Millisecond))
		})
	}
}

// twoHosts starts a main named xmain and a client c1 joined to it, each a
// server in its own network namespace with a veth to a test bridge, and
// returns them and the client's namespace. The underlay's veths send
// whole checksums for the ovn backend: OVS's userspace datapath passes a
// veth's partial ones on unfinished.
func twoHosts(b *testing.B, backend string) (main, client *server, clientNS string) {
	n := newTestNet(b)
	var ev <-chan api.Event
	for i, name := range []string{"xmain", "c1"} {
		ns, ip := n.addClient(b, i+1)
		nic := fmt.Sprintf("%sp%d", n.prefix, i+1)
		if backend == "ovn" {
			ipRun(b, "netns", "exec", ns, "ethtool", "-K", nic, "tx", "off")
			if out, err := exec.Command("ethtool", "-K", fmt.Sprintf("%sh%d", n.prefix, i+1), "tx", "off").CombinedOutput(); err != nil {
				b.Fatalf("ethtool: %v: %s", err, out)
			}
		}
		args := []string{"main"}
		if main != nil {
			args = []string{"client", "--join", joinToken(b, main)}
		}
		s := clientServer(b, ns, name, ip, args...)
		hc := api.HostConfig{Name: name, IP: ip, TestbedNIC: nic, CPUs: 1, MemoryMB: 256, IsMainHost: main == nil}
		if backend == "ovn" {
			hc.OVN = &api.OVNConfig{EncapIP: ip}
		}
		data, _ := json.Marshal(hc)
		if err := os.WriteFile(filepath.Join(s.dataDir, "config", "host.json"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		if main == nil {
			s.env = append(s.env, "TESTBEDOS_NETWORK="+backend)
			s.start(b)
			main, ev = s, events(b, s.c)
			continue
		}
		s.start(b)
		waitEvent(b, ev, api.EventMemberJoined, name, 30*time.Second)
		client, clientNS = s, ns
	}
	return main, client, clientNS
}

// guestNS makes guest namespace ns of server s reachable by a name of
// this process: s runs in a mount namespace of its own (ip netns exec),
// where alone its guests' namespaces are mounted. A bind mount of it under
// /run/netns, removed when the benchmark ends.
func guestNS(b *testing.B, s *server, ns string) string {
	alias := ns + ".x"
	path := nettest.NamespacePath(alias)
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		unix.Unmount(path, unix.MNT_DETACH)
		os.Remove(path)
	})
	src := fmt.Sprintf("/proc/%d/root%s", s.cmd.Process.Pid, nettest.NamespacePath(ns))
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		b.Fatalf("bind %s: %v", src, err)
	}
	return alias
}

var vxlanLink = regexp.MustCompile(`vxlan id \d+ local \S+`)

// logDatapath logs what carried the traffic between the hosts: for
// bridge, the client's VXLAN links; for ovn, each host's br-int datapath
// type and its tunnel ports.
func logDatapath(b *testing.B, backend string, main, client *server, clientNS string) {
	if backend == "bridge" {
		out, _ := exec.Command("ip", "-n", clientNS, "-d", "-o", "link", "show", "type", "vxlan").Output()
		b.Logf("bridge datapath: the kernel's (Linux bridges); VXLAN links on c1: %q", vxlanLink.FindAllString(string(out), -1))
		return
	}
	b.Logf("ovn datapath: %s", map[bool]string{true: "kernel (openvswitch module)", false: "userspace (datapath_type=netdev)"}[ovn.KernelDatapath()])
	for h, s := range map[string]*server{"xmain": main, "c1": client} {
		db := "--db=unix:" + filepath.Join(s.dataDir, "ovn", "db.sock")
		dp, _ := exec.Command("ovs-vsctl", db, "get", "Bridge", "br-int", "datapath_type").Output()
		tun, _ := exec.Command("ovs-vsctl", db, "--bare", "--columns=name,type,options", "find", "Interface", "type=geneve").Output()
		b.Logf("%s: br-int datapath_type=%s; tunnel ports: %s", h, strings.TrimSpace(string(dp)), strings.Join(strings.Fields(string(tun)), " "))
	}
}
