package topology

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// Router is a resolved router: a network namespace on the main host with
// one port per attached switch.
type Router struct {
	Name string `json:"name"`
	// Host is the host the router runs on: always the main.
	Host string `json:"host"`
	// Namespace is the name under /run/netns.
	Namespace string `json:"namespace"`
	// Table is the nftables table (family ip) inside the namespace that
	// holds the router's NAT.
	Table        string        `json:"table"`
	Ports        []RouterPort  `json:"ports"`
	StaticRoutes []StaticRoute `json:"static_routes,omitempty"`
	NAT          []NATRule     `json:"nat,omitempty"`
	DHCP         []DHCPPool    `json:"dhcp,omitempty"`
}

// RouterPort is one port: a veth whose host end is on the switch's bridge.
type RouterPort struct {
	Name   string `json:"name"` // as written, for messages
	Switch string `json:"switch"`
	Bridge string `json:"bridge"`
	// HostName is the host end on the bridge, IfName the end inside the
	// router's namespace; both at most 15 bytes.
	HostName string `json:"host_name"`
	IfName   string `json:"if_name"`
	Address  string `json:"address"` // CIDR, e.g. 10.0.0.1/24
	MAC      string `json:"mac"`
	// Extra are further addresses of the port (dnat_and_snat external
	// addresses on its subnet), CIDR.
	Extra []string `json:"extra,omitempty"`
	// GatewayChassis is the host the port is the router's gateway on
	// (set_gateway_chassis, with distributed routers only).
	GatewayChassis string `json:"gateway_chassis,omitempty"`
}

// StaticRoute is one route of a router.
type StaticRoute struct {
	Prefix  string `json:"prefix"`
	Nexthop string `json:"nexthop"`
	// Unused says why the route is not installed (its next hop is on no
	// port's switch, or its prefix is a subnet the router is attached to,
	// whose connected route wins); empty for a route that is.
	Unused string `json:"unused,omitempty"`
}

// NATRule is one NAT rule of a router. LogicalIP is a CIDR; OutPort is the
// router-side name of the port ExternalIP is on.
type NATRule struct {
	Type       string `json:"type"`
	LogicalIP  string `json:"logical_ip"`
	ExternalIP string `json:"external_ip"`
	OutPort    string `json:"out_port"`
	// Unused says why the rule is not applied (its external address is on
	// no switch the router has a port on); empty for a rule that is.
	Unused string `json:"unused,omitempty"`
}

// DHCPPool is what the router serves on one switch.
type DHCPPool struct {
	Switch string `json:"switch"`
	// IfName is the router's port on the switch; Gateway its address (the
	// router option), Subnet the switch's.
	IfName  string `json:"if_name"`
	Gateway string `json:"gateway"`
	Subnet  string `json:"subnet"`
	// ExcludeFrom..ExcludeTo (inclusive, optional) and Reserved (static
	// guests and router ports) are never leased.
	ExcludeFrom string   `json:"exclude_from,omitempty"`
	ExcludeTo   string   `json:"exclude_to,omitempty"`
	Reserved    []string `json:"reserved,omitempty"`
}

// ExternalSide is the host's end of an external switch.
type ExternalSide struct {
	// Address is set on the switch's bridge on the main host, CIDR.
	Address string `json:"address"`
	// Table is the nftables table (family ip) in the host's namespace
	// that masquerades the subnet out and lets it through forward.
	Table string `json:"table"`
	Host  string `json:"host"`
	// Provider is the provider network the switch's localnet port names:
	// its bridge, address and table are shared with every deployment on
	// the same network (provider.go). Empty for a switch of its own.
	Provider string `json:"provider,omitempty"`
}

// RouterNamespace is the netns name of a router. Guest names hold no dots,
// so ".router." cannot clash with a guest's namespace.
func RouterNamespace(deployment, router string) string {
	return "tbos." + deployment + ".router." + router
}

// RouterTable is the nftables table inside a router's namespace.
func RouterTable(deployment, router string) string {
	return Prefix(deployment) + "n" + hexHash(deployment + "/router/" + router)[:6]
}

// RouterPortHostName is the host end of port i of a router.
func RouterPortHostName(deployment, router string, i int) string {
	return Prefix(deployment) + "r" + hexHash(deployment + "/router/" + router + "/" + strconv.Itoa(i))[:7]
}

// RouterPortIfName is port i's end inside the router's namespace.
func RouterPortIfName(i int) string { return "port" + strconv.Itoa(i) }

// RouterPortMAC is the MAC of a router port the YAML gives none for.
func RouterPortMAC(deployment, router string, i int) string {
	h := hexHash(deployment + "/router/" + router + "/" + strconv.Itoa(i))
	return "02:" + h[0:2] + ":" + h[2:4] + ":" + h[4:6] + ":" + h[6:8] + ":" + h[8:10]
}

// ExternalTable is the host-side nftables table of an external switch.
func ExternalTable(deployment, sw string) string {
	return Prefix(deployment) + "e" + hexHash(deployment + "/switch/" + sw)[:6]
}

// resolveRouters adds the routers and external switches to st. Routers run
// on the main host; a router on a switch whose guests are on another host is
// refused, unless the backend's routers are distributed (ovn), where a
// router port may also name its gateway chassis.
func (c *Config) resolveRouters(st *State, ps *problems, providers map[string]string, distributed bool) {
	main := ""
	for _, h := range st.Hosts {
		if h.Main {
			main = h.Name
			break
		}
	}
	if main == "" && len(st.Hosts) > 0 {
		main = st.Hosts[0].Name
	}
	specs, sbase := c.SwitchSpecs()
	byName := map[string]*Switch{}
	for i := range st.Switches {
		sw := &st.Switches[i]
		byName[sw.Name] = sw
		spec := specs[sw.Name]
		switch n := spec.providerNetwork(); {
		case spec.External:
			addr := DefaultExternalAddress
			if p, err := netip.ParsePrefix(sw.Subnet); err == nil {
				// network.switches' external: the host takes .1.
				addr = netip.PrefixFrom(p.Addr().Next(), p.Bits()).String()
			}
			sw.External = &ExternalSide{Address: addr, Table: ExternalTable(st.Deployment, sw.Name), Host: main}
			c.onMainOnly(ps, sbase+"."+sw.Name, sw, main)
		case n != "" && providers[n] != "":
			sw.External = &ExternalSide{Address: providers[n], Table: ProviderTable(n), Host: main, Provider: n}
			c.onMainOnly(ps, sbase+"."+sw.Name, sw, main)
		}
	}
	// Addresses never leased, per switch: static guests and router ports.
	reserved := map[string][]string{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			if p, err := netip.ParsePrefix(ifc.Address); err == nil {
				reserved[ifc.Switch] = append(reserved[ifc.Switch], p.Addr().String())
			}
		}
	}
	routers, base := c.RouterSpecs()
	for _, name := range sortedKeys(routers) {
		for _, p := range routers[name].Ports {
			if gw, err := netip.ParsePrefix(p.GatewayIP); err == nil {
				reserved[p.Switch] = append(reserved[p.Switch], gw.Addr().String())
			}
		}
	}
	for _, sw := range st.Switches {
		if sw.External != nil {
			if p, err := netip.ParsePrefix(sw.External.Address); err == nil {
				reserved[sw.Name] = append(reserved[sw.Name], p.Addr().String())
			}
		}
	}
	for _, name := range sortedKeys(routers) {
		spec := routers[name]
		rp := base + "." + name
		r := Router{Name: name, Host: main, Namespace: RouterNamespace(st.Deployment, name), Table: RouterTable(st.Deployment, name)}
		portOf := map[string]int{}
		for i, p := range spec.Ports {
			sw := byName[p.Switch]
			if sw == nil {
				continue
			}
			if !distributed {
				c.onMainOnly(ps, fmt.Sprintf("%s.ports[%d].switch", rp, i), sw, main)
			}
			port := RouterPort{
				Name:     p.Name,
				Switch:   p.Switch,
				Bridge:   sw.Bridge,
				HostName: RouterPortHostName(st.Deployment, name, i),
				IfName:   RouterPortIfName(i),
				MAC:      RouterPortMAC(st.Deployment, name, i),
			}
			if port.Name == "" {
				port.Name = name + "-" + p.Switch
			}
			if distributed {
				port.GatewayChassis = c.gatewayChassis(ps, st, fmt.Sprintf("%s.ports[%d].set_gateway_chassis", rp, i), p.SetGatewayChassis)
			}
			if mac, err := parseMAC(p.MAC); err == nil {
				port.MAC = mac
			}
			if gw, err := netip.ParsePrefix(p.GatewayIP); err == nil {
				port.Address = gw.String()
			}
			portOf[p.Switch] = len(r.Ports)
			r.Ports = append(r.Ports, port)
		}
		attached := func(a netip.Addr) int {
			for i, p := range r.Ports {
				if sub, err := netip.ParsePrefix(byName[p.Switch].Subnet); err == nil && sub.Contains(a) {
					return i
				}
			}
			return -1
		}
		for i, s := range spec.StaticRoutes {
			pfx, _ := netip.ParsePrefix(s.Prefix)
			nh, _ := netip.ParseAddr(s.Nexthop)
			route := StaticRoute{Prefix: pfx.Masked().String(), Nexthop: nh.String()}
			route.Unused = unusedRoute(name, r.Ports, byName, pfx.Masked(), nh, attached(nh))
			if route.Unused != "" {
				c.note(st, fmt.Sprintf("%s.static_routes[%d]", rp, i), "%s", route.Unused)
			}
			r.StaticRoutes = append(r.StaticRoutes, route)
		}
		for i, n := range spec.NAT {
			logical, _ := parseAddrOrPrefix(n.LogicalIP)
			ext, _ := netip.ParseAddr(n.ExternalIP)
			rule := NATRule{Type: n.NATType, LogicalIP: logical.String(), ExternalIP: ext.String()}
			if attached(ext) < 0 {
				rule.Unused = fmt.Sprintf("%s %s → %s: no port of %s is on a switch holding %s (OVN applies NAT on such a port only); the rule is not applied", n.NATType, logical, ext, name, ext)
				c.note(st, fmt.Sprintf("%s.nat[%d]", rp, i), "%s", rule.Unused)
			}
			if i := attached(ext); i >= 0 {
				port := &r.Ports[i]
				rule.OutPort = port.IfName
				if pa, err := netip.ParsePrefix(port.Address); err == nil && pa.Addr() != ext && n.NATType == NATDnatAndSnat {
					port.Extra = append(port.Extra, netip.PrefixFrom(ext, pa.Bits()).String())
				}
			}
			r.NAT = append(r.NAT, rule)
		}
		for _, d := range spec.DHCP {
			i, ok := portOf[d.Switch]
			if !ok {
				continue
			}
			port := r.Ports[i]
			gw, _ := netip.ParsePrefix(port.Address)
			pool := DHCPPool{Switch: d.Switch, IfName: port.IfName, Gateway: gw.Addr().String(), Subnet: byName[d.Switch].Subnet, Reserved: reserved[d.Switch]}
			if x := d.ExcludeIPs; x != nil {
				pool.ExcludeFrom, pool.ExcludeTo = x.From, x.To
			}
			r.DHCP = append(r.DHCP, pool)
		}
		st.Routers = append(st.Routers, r)
	}
}

// unusedRoute says why a static route of router name cannot be installed,
// or "": its next hop is on no port's switch (port is -1), or its prefix is
// the subnet of a switch the router is attached to, whose connected route
// wins as it does in OVN.
func unusedRoute(name string, ports []RouterPort, byName map[string]*Switch, pfx netip.Prefix, nh netip.Addr, port int) string {
	if port < 0 {
		return fmt.Sprintf("route %s via %s: no port of %s reaches it; traffic to it is dropped", pfx, nh, name)
	}
	for _, p := range ports {
		if sub, err := netip.ParsePrefix(byName[p.Switch].Subnet); err == nil && sub.Masked() == pfx {
			return fmt.Sprintf("route %s via %s: %s is attached to %s (port %s), whose connected route wins; this route is not installed", pfx, nh, name, pfx, p.Name)
		}
	}
	return ""
}

// onMainOnly refuses a router (or external side) on a switch whose guests
// are on a host other than the main: the router runs on the main only.
// gatewayChassis is the host a router port's set_gateway_chassis names,
// which must be one of the cluster's hosts; "" when none is named.
func (c *Config) gatewayChassis(ps *problems, st *State, field, host string) string {
	if host == "" {
		return ""
	}
	var names []string
	for _, h := range st.Hosts {
		if h.Name == host {
			return host
		}
		names = append(names, h.Name)
	}
	ps.addf(field, "host %s is not a host of the cluster (%s)", host, strings.Join(names, ", "))
	return ""
}

func (c *Config) onMainOnly(ps *problems, field string, sw *Switch, main string) {
	for _, h := range sw.Hosts {
		if h != main {
			ps.addf(field, "switch %s has guests on host %s, but routers and external switches run on the main host %s: place the switch's guests on %s", sw.Name, h, main, main)
			return
		}
	}
}

// checkRouterState is CheckState's part for routers and external switches.
func checkRouterState(st *State, deployment string, bridges map[string]string, bad func(string, ...any)) {
	for _, sw := range st.Switches {
		if x := sw.External; x != nil {
			want := ExternalTable(deployment, sw.Name)
			if x.Provider != "" {
				want = ProviderTable(x.Provider)
			}
			if x.Table != want {
				bad("switch %s: external table %q, want %q", sw.Name, x.Table, want)
			}
			if _, err := netip.ParsePrefix(x.Address); err != nil {
				bad("switch %s: external address %q is not a CIDR address", sw.Name, x.Address)
			}
		}
	}
	for _, r := range st.Routers {
		if !api.ValidName(r.Name) {
			bad("router name %q is not a valid name", r.Name)
			continue
		}
		if want := RouterNamespace(deployment, r.Name); r.Namespace != want {
			bad("router %s: namespace %q, want %q", r.Name, r.Namespace, want)
		}
		if want := RouterTable(deployment, r.Name); r.Table != want {
			bad("router %s: table %q, want %q", r.Name, r.Table, want)
		}
		for i, p := range r.Ports {
			if br, ok := bridges[p.Switch]; !ok || p.Bridge != br {
				bad("router %s: port %d: bridge %q is not that of switch %q", r.Name, i, p.Bridge, p.Switch)
			}
			if want := RouterPortHostName(deployment, r.Name, i); p.HostName != want {
				bad("router %s: port %d: host name %q, want %q", r.Name, i, p.HostName, want)
			}
			if want := RouterPortIfName(i); p.IfName != want {
				bad("router %s: port %d: name %q, want %q", r.Name, i, p.IfName, want)
			}
		}
		ifOn := map[string]string{} // switch → port name inside
		names := map[string]bool{}
		for _, p := range r.Ports {
			ifOn[p.Switch], names[p.IfName] = p.IfName, true
		}
		for _, d := range r.DHCP {
			if ifOn[d.Switch] == "" || d.IfName != ifOn[d.Switch] {
				bad("router %s: dhcp on switch %s: port %q is not the router's port on it", r.Name, d.Switch, d.IfName)
			}
		}
		for _, n := range r.NAT {
			if n.OutPort != "" && !names[n.OutPort] {
				bad("router %s: nat: port %q is not a port of the router", r.Name, n.OutPort)
			}
		}
	}
}
