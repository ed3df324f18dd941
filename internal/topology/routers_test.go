package topology

import (
	"strings"
	"testing"
)

// routed is a valid routed topology; cases replace one line of it.
func routed(replace map[int]string) string {
	lines := []string{
		"machines:", // 1
		"  - name: a",
		"    network: [{switch: sw0, ip: 10.0.0.10, gateway: 10.0.0.1}]",
		"  - name: b",
		"    network: [{switch: sw1, ip: dynamic}]", // 5
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/24}",
		"    sw1: {subnet: 10.0.1.0/24}",
		"    ext: {subnet: 172.30.0.0/24, external: true}", // 10
		"  routers:",
		"    r1:",
		"      ports:",
		"        - {name: r1-sw0, switch: sw0, gateway_ip: 10.0.0.1/24}",
		"        - {name: r1-sw1, switch: sw1, gateway_ip: 10.0.1.1/24, mac: '02:00:00:00:01:01'}", // 15
		"        - {name: r1-ext, switch: ext, gateway_ip: 172.30.0.2/24}",
		"      static_routes: [{prefix: 0.0.0.0/0, nexthop: 172.30.0.1}]",
		"      nat: [{nat_type: snat, logical_ip: 10.0.0.0/16, external_ip: 172.30.0.2}]",
		"      dhcp: [{switch: sw1, exclude_ips: {from: 10.0.1.1, to: 10.0.1.9}}]", // 19
	}
	for n, l := range replace {
		lines[n-1] = l
	}
	return yamlLines(lines...)
}

func TestRouterValidation(t *testing.T) {
	if ps := parseProblems(t, routed(nil)); len(ps) != 0 {
		t.Fatalf("valid routed topology: %v", ps)
	}
	cases := []struct {
		name  string
		edit  map[int]string
		line  int
		field string
		msg   string
	}{
		{"gateway outside subnet", map[int]string{14: "        - {name: r1-sw0, switch: sw0, gateway_ip: 10.9.0.1/24}"},
			14, "network.routers.r1.ports[0].gateway_ip", "is outside switch sw0 subnet 10.0.0.0/24"},
		{"gateway prefix differs", map[int]string{14: "        - {name: r1-sw0, switch: sw0, gateway_ip: 10.0.0.1/16}"},
			14, "network.routers.r1.ports[0].gateway_ip", "has prefix /16"},
		{"two ports on one switch", map[int]string{15: "        - {name: r1-sw1, switch: sw0, gateway_ip: 10.0.0.2/24}"},
			15, "network.routers.r1.ports[1].switch", "already has port"},
		{"same gateway twice", map[int]string{15: "        - {name: r1-sw1, switch: sw1, gateway_ip: 10.0.0.1/24}"},
			15, "network.routers.r1.ports[1].gateway_ip", "is already the gateway of network.routers.r1.ports[0].gateway_ip, line 14"},
		{"router port on the host's side", map[int]string{16: "        - {name: r1-ext, switch: ext, gateway_ip: 172.30.0.1/24}"},
			16, "network.routers.r1.ports[2].gateway_ip", "is already the host's side of external switch ext (network.switches.ext.external, line 10)"},
		{"dhcp on a switch not attached", map[int]string{19: "      dhcp: [{switch: sw9}]"},
			19, "network.routers.r1.dhcp[0].switch", "is not a switch the router has a port on"},
		{"exclude range outside subnet", map[int]string{19: "      dhcp: [{switch: sw1, exclude_ips: {from: 10.0.1.1, to: 10.0.2.9}}]"},
			19, "network.routers.r1.dhcp[0].exclude_ips.to", "is outside switch sw1 subnet"},
		{"exclude range backwards", map[int]string{19: "      dhcp: [{switch: sw1, exclude_ips: {from: 10.0.1.9, to: 10.0.1.1}}]"},
			19, "network.routers.r1.dhcp[0].exclude_ips.to", "comes before from"},
		{"guest on a router gateway", map[int]string{3: "    network: [{switch: sw0, ip: 10.0.0.1}]"},
			3, "machines[0].network[0].ip", "is already the gateway of network.routers.r1.ports[0].gateway_ip"},
		{"dynamic without dhcp", map[int]string{5: "    network: [{switch: sw0, ip: dynamic}]"},
			5, "machines[1].network[0].ip", "no router serves DHCP on switch sw0"},
		{"bad nat type", map[int]string{18: "      nat: [{nat_type: pat, logical_ip: 10.0.0.0/16, external_ip: 172.30.0.2}]"},
			18, "network.routers.r1.nat[0].nat_type", `"pat" is not snat or dnat_and_snat`},
		{"dnat_and_snat of a prefix", map[int]string{18: "      nat: [{nat_type: dnat_and_snat, logical_ip: 10.0.0.0/16, external_ip: 172.30.0.5}]"},
			18, "network.routers.r1.nat[0].logical_ip", "must be one address"},
		{"unknown port switch", map[int]string{16: "        - {name: r1-ext, switch: nope, gateway_ip: 172.30.0.2/24}"},
			16, "network.routers.r1.ports[2].switch", "nope is not defined under network.switches"},
		{"unknown router field", map[int]string{17: "      static_route: []"},
			17, "network.routers.r1.static_route", "is not a known field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, routed(tc.edit))
			for _, p := range ps {
				if p.Field == tc.field && p.Line == tc.line && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want %d %s %q; got %v", tc.line, tc.field, tc.msg, ps)
		})
	}
}

func TestRouterOVNSpellingResolves(t *testing.T) {
	src := yamlLines(
		"machines:",
		"  - name: a",
		"    network:",
		"      - {switch: sw0, ip: dynamic, gateway: 10.0.0.1}",
		"network:",
		"  ovn:",
		"    switches:",
		"      sw0: {subnet: 10.0.0.0/24}",
		"      public:",
		"        subnet: 172.16.1.0/24",
		"        ports: [{name: ls-public, localnet: {network_name: public}}]",
		"    routers:",
		"      lr0:",
		"        ports:",
		"          - {name: lr0-sw0, mac: '00:00:00:00:ff:01', gateway_ip: 10.0.0.1/24, switch: sw0}",
		"          - {name: lr0-public, gateway_ip: 172.16.1.200/24, switch: public, set_gateway_chassis: main}",
		"        static_routes: [{prefix: 0.0.0.0/0, nexthop: 172.16.1.1}]",
		"        nat: [{nat_type: snat, external_ip: 172.16.1.200, logical_ip: 10.0.0.0/16}]",
		"        dhcp: [{switch: sw0, exclude_ips: {from: 10.0.0.1, to: 10.0.0.20}}]",
	)
	dir := writeProject(t, src)
	st, err := Generate(Options{Deployment: "lab", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Routers) != 1 {
		t.Fatalf("routers: %+v", st.Routers)
	}
	r := st.Routers[0]
	if r.Namespace != "tbos.lab.router.lr0" || len(r.Ports) != 2 || r.Ports[0].MAC != "00:00:00:00:ff:01" || r.Ports[1].Address != "172.16.1.200/24" {
		t.Fatalf("router: %+v", r)
	}
	if len(r.NAT) != 1 || r.NAT[0].OutPort != "port1" || r.NAT[0].LogicalIP != "10.0.0.0/16" {
		t.Fatalf("nat: %+v", r.NAT)
	}
	if len(r.DHCP) != 1 || r.DHCP[0].Gateway != "10.0.0.1" || r.DHCP[0].IfName != "port0" {
		t.Fatalf("dhcp: %+v", r.DHCP)
	}
	var ext *ExternalSide
	for _, sw := range st.Switches {
		if sw.Name == "public" {
			ext = sw.External
		}
	}
	if ext == nil || ext.Address != DefaultExternalAddress {
		t.Fatalf("public switch external side: %+v", ext)
	}
	ifc := st.Guests[0].Interfaces[0]
	if !ifc.Dynamic || ifc.Address != "" || ifc.Gateway != "" {
		t.Fatalf("dynamic interface: %+v", ifc)
	}
	if err := CheckState(st, "lab", st.Project); err != nil {
		t.Fatal(err)
	}
	st.Routers[0].Ports[0].HostName = "eth0"
	if err := CheckState(st, "lab", st.Project); err == nil || !strings.Contains(err.Error(), "router lr0: port 0: host name") {
		t.Fatalf("CheckState of an edited router port: %v", err)
	}
}

func TestRouterNames(t *testing.T) {
	for _, dep := range []string{"a", strings.Repeat("x", 63)} {
		for i := range 20 {
			if n := RouterPortHostName(dep, strings.Repeat("r", 63), i); len(n) > 15 || !strings.HasPrefix(n, Prefix(dep)) {
				t.Fatalf("port host name %q", n)
			}
		}
		if n := RouterTable(dep, "r1"); !strings.HasPrefix(n, Prefix(dep)) {
			t.Fatalf("table %q", n)
		}
		if n := ExternalTable(dep, "ext"); !strings.HasPrefix(n, Prefix(dep)) || n == RouterTable(dep, "ext") {
			t.Fatalf("external table %q", n)
		}
	}
	if RouterPortHostName("a", "r", 0) == RouterPortHostName("a", "r", 1) {
		t.Fatal("ports share a name")
	}
	if m := RouterPortMAC("a", "r", 0); len(m) != 17 || !strings.HasPrefix(m, "02:") {
		t.Fatalf("mac %q", m)
	}
}

func TestRoutedSwitchOnAnotherHostRefused(t *testing.T) {
	src := yamlLines(
		"machines:",
		"  - name: a",
		"    host: c1",
		"    network: [{switch: sw0, ip: 10.0.0.10}]",
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/24}",
		"  routers:",
		"    r1:",
		"      ports: [{switch: sw0, gateway_ip: 10.0.0.1/24}]",
	)
	dir := writeProject(t, src)
	_, err := Generate(Options{Deployment: "lab", ProjectDir: dir, Hosts: []Host{{Name: "main", Main: true}, {Name: "c1"}}})
	if err == nil || !strings.Contains(err.Error(), "kvm-compose.yaml:10: network.routers.r1.ports[0].switch switch sw0 has guests on host c1, but routers and external switches run on the main host main") {
		t.Fatalf("router on a switch of another host: %v", err)
	}
}

// With OVN's distributed routers a routed switch spans hosts: the router
// is accepted, every guest of the deployment on several hosts gets
// GeneveMTU, a port's set_gateway_chassis names its host, and a host not
// in the cluster is refused.
func TestRoutedSwitchSpansHostsWithOVN(t *testing.T) {
	src := yamlLines(
		"machines:",
		"  - {name: a, host: c1, network: [{switch: sw0, ip: 10.0.0.10}]}",
		"  - {name: b, host: main, network: [{switch: sw1, ip: 10.0.1.10}]}",
		"network:",
		"  switches:",
		"    sw0: {subnet: 10.0.0.0/24}",
		"    sw1: {subnet: 10.0.1.0/24}",
		"  routers:",
		"    r1:",
		"      ports: [{switch: sw0, gateway_ip: 10.0.0.1/24, set_gateway_chassis: c1}, {switch: sw1, gateway_ip: 10.0.1.1/24}]",
	)
	hosts := []Host{{Name: "main", Main: true}, {Name: "c1"}}
	st, err := Generate(Options{Deployment: "lab", ProjectDir: writeProject(t, src), Hosts: hosts, OVN: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Routers[0].Ports; p[0].GatewayChassis != "c1" || p[1].GatewayChassis != "" {
		t.Errorf("gateway chassis: %+v", p)
	}
	for _, g := range st.Guests {
		if g.Interfaces[0].MTU != GeneveMTU {
			t.Errorf("guest %s MTU %d, want %d", g.Name, g.Interfaces[0].MTU, GeneveMTU)
		}
	}
	bad := strings.Replace(src, "set_gateway_chassis: c1", "set_gateway_chassis: c9", 1)
	_, err = Generate(Options{Deployment: "lab", ProjectDir: writeProject(t, bad), Hosts: hosts, OVN: true})
	if err == nil || !strings.Contains(err.Error(), "set_gateway_chassis host c9 is not a host of the cluster (main, c1)") {
		t.Fatalf("an unknown gateway chassis: %v", err)
	}
}
