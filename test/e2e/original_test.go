package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/labgen"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// originalLab is written in the original TestbedOS's spellings: docker
// guests with their command as one string, a machine's network as one
// mapping, two routers chained over a transit switch, DHCP, SNAT to the
// provider network public through a localnet port, a route to a subnet the
// router is attached to and one whose next hop no port reaches.
var originalLab = `machines:
  - name: web
    network:
      switch: lan
      gateway: 10.61.0.1
      mac: "00:00:00:00:61:01"
      ip: dynamic
    docker:
      image: IMAGE
      command: "sleep infinity"
  - name: far
    network:
      - switch: far
        gateway: 10.61.2.1
        mac: "00:00:00:00:61:02"
        ip: "10.61.2.10"
    docker:
      image: IMAGE
      command: "sh -c 'exec sleep infinity'"
` + labgen.ChainedRouters{Net: "10.61", MAC: "6e", PublicIP: "172.16.1.201", PublicPort: "ls-public",
	EdgeRoutes:  []string{`{prefix: "10.61.0.0/24", nexthop: "10.61.0.1"}`},
	InnerRoutes: []string{`{prefix: "192.168.200.0/24", nexthop: "10.61.9.9"}`},
}.YAML() + `tooling: {}
testbed_options:
  load_balancing: NaiveRoundRobin
`

// secondLab is another lab on the same provider network.
const secondLab = `machines:
  - name: probe
    network:
      - {switch: lan, gateway: 10.62.0.1, mac: "00:00:00:00:62:01", ip: "10.62.0.10"}
    docker:
      image: IMAGE
      command: "sleep infinity"
network:
  ovn:
    switches:
      lan: {subnet: "10.62.0.0/24"}
      public:
        subnet: "172.16.1.0/24"
        ports:
          - {name: ls-public, localnet: {network_name: public}}
    routers:
      r2:
        ports:
          - {name: r2-lan, mac: "00:00:00:00:6f:01", gateway_ip: "10.62.0.1/24", switch: lan}
          - {name: r2-public, mac: "00:00:00:00:6f:02", gateway_ip: "172.16.1.202/24", switch: public}
        static_routes:
          - {prefix: "0.0.0.0/0", nexthop: "172.16.1.1"}
        nat:
          - {nat_type: snat, external_ip: "172.16.1.202", logical_ip: "10.62.0.0/24"}
`

// overlapLab has an external switch of its own whose subnet overlaps the
// provider network's.
const overlapLab = `machines:
  - name: o
    network: [{switch: lan, ip: 10.63.0.10}]
network:
  switches:
    lan: {subnet: 10.63.0.0/24}
    out: {subnet: 172.16.0.0/16, external: true}
  routers:
    r3:
      ports:
        - {name: r3-lan, switch: lan, gateway_ip: 10.63.0.1/24}
        - {name: r3-out, switch: out, gateway_ip: 172.16.0.2/16}
`

// TestOriginalLabOnBridge brings a lab written in the original's spellings
// up on the bridge backend: what cannot work is explained once in the log,
// the routed paths work, and two labs share the provider network public
// (one bridge, one 172.16.1.1) until the last is down; an external switch
// overlapping it is a 409 naming the deployment that holds it.
func TestOriginalLabOnBridge(t *testing.T) {
	nettest.RequireRoot(t)
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	s := startServer(t)
	provider := topology.ProviderBridgeName("public")
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(provider); err == nil {
			netlink.LinkDel(l)
		}
		dropTable(topology.ProviderTable("public"))
	})

	a := deployment(t, s, "orig", project(t, strings.ReplaceAll(originalLab, "IMAGE", image), nil))
	t.Cleanup(func() { removeContainers(cli, a, "web", "far") })
	mustSucceed(t, s, a, cmd(api.CmdGenerateArtefacts))
	stA := state(t, s, a)
	log := strings.Join(mustSucceed(t, s, a, cmd(api.CmdUp)), "\n")
	for _, want := range []string{
		"note: kvm-compose.yaml:45: network.ovn.routers.edge.static_routes[2]: route 10.61.0.0/24 via 10.61.0.1: edge is attached to 10.61.0.0/24 (port edge-lan), whose connected route wins",
		"note: kvm-compose.yaml:57: network.ovn.routers.inner.static_routes[1]: route 192.168.200.0/24 via 10.61.9.9: no port of inner reaches it; traffic to it is dropped",
		"guest web: eth0 leased 10.61.0.10",
	} {
		if strings.Count(log, want) != 1 {
			t.Errorf("up log should say once %q:\n%s", want, log)
		}
	}
	for _, p := range []struct{ from, to string }{{"web", "10.61.2.10"}, {"far", "10.61.0.10"}, {"far", "172.16.1.1"}, {"web", "172.16.1.1"}} {
		if out, ok := execOK(t, s, a, p.from, "ping", "-c", "1", "-W", "5", p.to); !ok {
			t.Errorf("%s → %s: %s", p.from, p.to, out)
		}
	}

	b := deployment(t, s, "orig2", project(t, strings.ReplaceAll(secondLab, "IMAGE", image), nil))
	t.Cleanup(func() { removeContainers(cli, b, "probe") })
	mustSucceed(t, s, b, cmd(api.CmdGenerateArtefacts))
	stB := state(t, s, b)
	mustSucceed(t, s, b, cmd(api.CmdUp))
	if out, ok := execOK(t, s, b, "probe", "ping", "-c", "1", "-W", "5", "172.16.1.1"); !ok {
		t.Errorf("second lab → 172.16.1.1: %s", out)
	}
	if n := hostsWith(t, "172.16.1.1/24"); len(n) != 1 || n[0] != provider {
		t.Errorf("172.16.1.1/24 is on %v, want one bridge %s", n, provider)
	}

	c := deployment(t, s, "overlap", project(t, overlapLab, nil))
	mustSucceed(t, s, c, cmd(api.CmdGenerateArtefacts))
	_, err := s.c.Action(context.Background(), c, cmd(api.CmdUp))
	if client.StatusOf(err) != 409 || !strings.Contains(err.Error(), "deployment "+a) && !strings.Contains(err.Error(), "deployment "+b) {
		t.Errorf("overlapping external subnet: %v, want a 409 naming %s or %s", err, a, b)
	}

	// The first down keeps what the second still uses.
	log = strings.Join(mustSucceed(t, s, a, cmd(api.CmdDown)), "\n")
	t.Logf("down of %s:\n%s", a, log)
	if !strings.Contains(log, "kept (deployment "+b+" uses it too)") {
		t.Errorf("down log does not say the shared network stays:\n%s", log)
	}
	assertNothingLeft(t, stA)
	if out, ok := execOK(t, s, b, "probe", "ping", "-c", "1", "-W", "5", "172.16.1.1"); !ok {
		t.Errorf("after the first lab's down, second lab → 172.16.1.1: %s", out)
	}
	mustSucceed(t, s, b, cmd(api.CmdDown))
	assertNothingLeft(t, stB)
	if _, err := netlink.LinkByName(provider); err == nil {
		t.Errorf("the last down left provider bridge %s", provider)
	}
	if hasTable(t, "", topology.ProviderTable("public")) {
		t.Errorf("the last down left table %s", topology.ProviderTable("public"))
	}
}

// hostsWith lists the host's links that carry address cidr.
func hostsWith(t *testing.T, cidr string) []string {
	t.Helper()
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if a.IPNet.String() == cidr {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err == nil {
				out = append(out, l.Attrs().Name)
			}
		}
	}
	return out
}
