package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/testenv"
)

// ovnSpanLab is a routed switch spanning the three hosts (a guest on each)
// and a second switch on c1 behind the router, whose port there is the
// router's gateway port on c1's chassis (set_gateway_chassis): traffic to
// it from the other hosts goes through c1.
const ovnSpanLab = `machines:
  - {name: m1, host: %[1]s, network: [{switch: sw0, ip: 10.71.0.11, gateway: 10.71.0.1}]}
  - {name: c1g, host: c1, network: [{switch: sw0, ip: 10.71.0.12, gateway: 10.71.0.1}]}
  - {name: c2g, host: c2, network: [{switch: sw0, ip: 10.71.0.13, gateway: 10.71.0.1}]}
  - {name: far, host: c1, network: [{switch: sw1, ip: 10.71.1.11, gateway: 10.71.1.1}]}
network:
  switches:
    sw0: {subnet: 10.71.0.0/24}
    sw1: {subnet: 10.71.1.0/24}
  routers:
    r1:
      ports:
        - {switch: sw0, gateway_ip: 10.71.0.1/24}
        - {switch: sw1, gateway_ip: 10.71.1.1/24, set_gateway_chassis: c1}
`

// Issue 17, OVN across hosts: a main and two clients, each in its own
// network namespace with its own Open vSwitch and ovn-controller (the
// clients' joined to the main's southbound database over SSL with the
// cluster's pinned certificates, Geneve between them from br-phy). A
// routed switch spans the three hosts: every guest pings every other,
// across the distributed router too; the router port named with
// set_gateway_chassis has its gateway on c1. Up prints no stage of kinds
// the lab has none of (acl). Down leaves no logical object, OVS port,
// namespace or link on any host; a client that stops leaves the
// southbound database, and one killed and removed from the cluster is
// taken out of it.
func TestOVNAcrossThreeHosts(t *testing.T) {
	if _, err := exec.LookPath("ovn-controller"); err != nil {
		testenv.Missing(t, "Open vSwitch and OVN are not installed (openvswitch-switch ovn-central ovn-host)")
	}
	start := time.Now()
	n := newTestNet(t)
	hosts := map[string]*server{}
	hostNS := map[string]string{}
	var mainName string
	var ev <-chan api.Event
	for i, name := range []string{"", "c1", "c2"} {
		ns, ip := n.addClient(t, i+1)
		// A real NIC hands OVS whole checksums; a veth hands it partial
		// ones, which OVS's userspace datapath (reading the host's end
		// of the underlay off the wire) passes on unfinished: the test's
		// underlay sends whole ones.
		for _, c := range [][]string{{"ethtool", "-K", fmt.Sprintf("%sh%d", n.prefix, i+1), "tx", "off"},
			{"ip", "netns", "exec", ns, "ethtool", "-K", fmt.Sprintf("%sp%d", n.prefix, i+1), "tx", "off"}} {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v: %s", c, err, out)
			}
		}
		args := []string{"client", "--join", ""}
		if name == "" {
			name, mainName, args = "ovnmain", "ovnmain", []string{"main"}
		} else {
			args[2] = joinToken(t, hosts[mainName])
		}
		s := clientServer(t, ns, name, ip, args...)
		// The testbed NIC is the namespace's end of its veth; the Geneve
		// address is the host's own.
		hc := api.HostConfig{Name: name, IP: ip, TestbedNIC: fmt.Sprintf("%sp%d", n.prefix, i+1), CPUs: 1, MemoryMB: 256,
			IsMainHost: name == mainName, OVN: &api.OVNConfig{EncapIP: ip}}
		data, _ := json.Marshal(hc)
		if err := os.WriteFile(filepath.Join(s.dataDir, "config", "host.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if name == mainName {
			s.env = append(s.env, "TESTBEDOS_NETWORK=ovn")
			s.args = []string{"main"}
		}
		s.start(t)
		hosts[name], hostNS[name] = s, ns
		if name == mainName {
			ev = events(t, s.c)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("main's log:\n%s", lastLines(s.stderr.String(), 40))
				}
			})
			continue
		}
		waitEvent(t, ev, api.EventMemberJoined, name, 30*time.Second)
	}
	main := hosts[mainName]
	t.Logf("three hosts up in %s", time.Since(start).Round(time.Millisecond))

	dir := project(t, fmt.Sprintf(ovnSpanLab, mainName), nil)
	name := deployment(t, main, "oc", dir)
	mustSucceed(t, main, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, main, name)
	t.Cleanup(func() {
		for _, ns := range hostNS {
			leftoversIn(t, ns, st.Prefix, false)
		}
	})
	upStart := time.Now()
	upLog := strings.Join(mustSucceed(t, main, name, cmd(api.CmdUp)), "\n")
	t.Logf("up in %s", time.Since(upStart).Round(time.Millisecond))
	if strings.Contains(upLog, "] acl:") || !strings.Contains(upLog, "] routers: 1 router") {
		t.Errorf("up's stages: want routers and no acl:\n%s", upLog)
	}

	for _, from := range st.Guests {
		for _, to := range st.Guests {
			if from.Name == to.Name {
				continue
			}
			ip, _, _ := net.ParseCIDR(to.Interfaces[0].Address)
			if err := pingFromClient(hosts[from.Host], from.Netns.Namespace, ip); err != nil {
				t.Errorf("%s (%s) -> %s (%s): %v", from.Name, from.Host, to.Name, to.Host, err)
			}
		}
	}
	if t.Failed() {
		t.Logf("up log:\n%s", upLog)
		for h, s := range hosts {
			for _, f := range []string{"ovn-controller.log", "ovnsb_db.log"} {
				b, _ := os.ReadFile(filepath.Join(s.dataDir, "ovn", f))
				t.Logf("%s's %s:\n%s", h, f, lastLines(string(b), 12))
			}
		}
	}
	sb := "--db=unix:" + filepath.Join(main.dataDir, "ovn", "ovnsb_db.sock")
	out, _ := exec.Command("ovn-sbctl", sb, "--bare", "--columns=name", "list", "Chassis").Output()
	for _, h := range []string{mainName, "c1", "c2"} {
		if !strings.Contains(string(out), h) {
			t.Errorf("chassis %s is not in the southbound database: %s", h, out)
		}
	}
	nb := "--db=unix:" + filepath.Join(main.dataDir, "ovn", "ovnnb_db.sock")
	out, _ = exec.Command("ovn-nbctl", nb, "--bare", "--columns=chassis_name", "list", "Gateway_Chassis").Output()
	if strings.TrimSpace(string(out)) != "c1" {
		t.Errorf("gateway chassis %q, want c1", out)
	}

	downStart := time.Now()
	mustSucceed(t, main, name, cmd(api.CmdDown))
	t.Logf("down in %s", time.Since(downStart).Round(time.Millisecond))
	for h, s := range hosts {
		if left := leftoversIn(t, hostNS[h], st.Prefix, true); len(left) > 0 {
			t.Errorf("links left on %s: %v", h, left)
		}
		out, err := exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", s.cmd.Process.Pid), "ip", "netns", "list").CombinedOutput()
		if err != nil || strings.Contains(string(out), netnsPrefix(name)) {
			t.Errorf("namespaces left on %s: %v\n%s", h, err, out)
		}
		// Only OVN's own tunnels to the other chassis stay.
		db := "--db=unix:" + filepath.Join(s.dataDir, "ovn", "db.sock")
		out, _ = exec.Command("ovs-vsctl", db, "list-ports", "br-int").Output()
		for _, port := range strings.Fields(string(out)) {
			if !strings.HasPrefix(port, "ovn-") {
				t.Errorf("OVS port %s left on %s's br-int", port, h)
			}
		}
	}
	for _, table := range []string{"Logical_Switch", "Logical_Router", "DHCP_Options", "DNS", "Gateway_Chassis"} {
		if out, _ := exec.Command("ovn-nbctl", nb, "--bare", "--columns=_uuid", "list", table).Output(); strings.TrimSpace(string(out)) != "" {
			t.Errorf("down left %s rows: %s", table, out)
		}
	}

	// c2 stops and leaves; c1 is killed (it cannot), and removing it from
	// the cluster removes its chassis.
	hosts["c2"].stop(t)
	hosts["c1"].kill(t)
	if err := main.c.RemoveMember(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("ovn-sbctl", sb, "--bare", "--columns=name", "list", "Chassis").Output()
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != mainName {
		t.Errorf("chassis left after c2 stopped and c1 was removed: %q, want only %s", got, mainName)
	}
	t.Logf("whole test in %s", time.Since(start).Round(time.Millisecond))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
