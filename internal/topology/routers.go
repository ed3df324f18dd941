package topology

import (
	"fmt"
	"net/netip"

	"github.com/testbedos/testbedos/internal/api"
)

// IPDynamic as a machine's network[].ip asks the router serving the switch
// for a DHCP lease.
const IPDynamic = "dynamic"

// DefaultExternalAddress is the host's side of an external switch written in
// the original's spelling (a switch port with localnet): the gateway of the
// original's default bridge mapping.
const DefaultExternalAddress = "172.16.1.1/24"

// NAT kinds of a router's nat[].nat_type.
const (
	NATSnat        = "snat"
	NATDnatAndSnat = "dnat_and_snat"
)

// SwitchPortSpec is one of the original's switch ports: exactly one of
// Localnet, Internal and Router is given. A localnet port makes the switch
// external; the others are accepted and explained (switchports.go).
type SwitchPortSpec struct {
	Name string `yaml:"name"`
	// Chassis binds the port to a host of the cluster.
	Chassis  string            `yaml:"chassis"`
	Localnet *LocalnetSpec     `yaml:"localnet"`
	Internal *InternalPortSpec `yaml:"internal"`
	Router   *RouterPortRef    `yaml:"router"`
}

// LocalnetSpec names the original's provider network (a bridge mapping of
// host.json) the switch reaches the outside through.
type LocalnetSpec struct {
	NetworkName string `yaml:"network_name"`
}

// InternalPortSpec is an OVS internal port: an interface on the host.
type InternalPortSpec struct {
	IP          string `yaml:"ip"`
	MAC         string `yaml:"mac"`
	NetworkName string `yaml:"network_name"`
}

// RouterPortRef connects the switch to a router port by name.
type RouterPortRef struct {
	RouterPort string `yaml:"router_port"`
	MAC        string `yaml:"mac"`
}

// RouterSpec is one router of network.routers (or network.ovn.routers).
type RouterSpec struct {
	Ports        []RouterPortSpec  `yaml:"ports"`
	StaticRoutes []StaticRouteSpec `yaml:"static_routes"`
	NAT          []NATSpec         `yaml:"nat"`
	DHCP         []DHCPSpec        `yaml:"dhcp"`
}

// RouterPortSpec attaches a router to a switch.
type RouterPortSpec struct {
	Name      string `yaml:"name"`
	Switch    string `yaml:"switch"`
	GatewayIP string `yaml:"gateway_ip"` // with prefix, e.g. 10.0.0.1/24
	MAC       string `yaml:"mac"`
	// SetGatewayChassis names the host the port is the router's gateway
	// on, as in the original: with the ovn backend (distributed routers)
	// that host's chassis; with the bridge backend, whose routers run on
	// the main host, it is accepted and ignored.
	SetGatewayChassis string `yaml:"set_gateway_chassis"`
}

// StaticRouteSpec is one static route of a router.
type StaticRouteSpec struct {
	Prefix  string `yaml:"prefix"`
	Nexthop string `yaml:"nexthop"`
}

// NATSpec is one NAT rule of a router.
type NATSpec struct {
	NATType    string `yaml:"nat_type"`
	LogicalIP  string `yaml:"logical_ip"`
	ExternalIP string `yaml:"external_ip"`
}

// DHCPSpec makes the router serve DHCP on one of its switches.
type DHCPSpec struct {
	Switch     string       `yaml:"switch"`
	ExcludeIPs *IPRangeSpec `yaml:"exclude_ips"`
}

// IPRangeSpec is an inclusive range of addresses.
type IPRangeSpec struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// RouterSpecs returns the routers and the field path they were written
// under, whichever spelling was used.
func (c *Config) RouterSpecs() (map[string]RouterSpec, string) {
	if c.Network.Routers == nil && c.Network.OVN != nil {
		return c.Network.OVN.Routers, "network.ovn.routers"
	}
	return c.Network.Routers, "network.routers"
}

// external reports whether a switch is external in either spelling.
func (s SwitchSpec) external() bool {
	if s.External {
		return true
	}
	for _, p := range s.Ports {
		if p.Localnet != nil {
			return true
		}
	}
	return false
}

// dhcpSwitches maps each switch some router serves DHCP on to that router.
func (c *Config) dhcpSwitches() map[string]string {
	out := map[string]string{}
	routers, _ := c.RouterSpecs()
	for _, name := range sortedKeys(routers) {
		for _, d := range routers[name].DHCP {
			if _, ok := out[d.Switch]; !ok && d.Switch != "" {
				out[d.Switch] = name
			}
		}
	}
	return out
}

// checkDynamic: ip: dynamic needs a router serving DHCP on the switch.
func (c *Config) checkDynamic(ps *problems, field, sw string, known bool) {
	if !known {
		return
	}
	if _, ok := c.dhcpSwitches()[sw]; !ok && c.Network.OVN == nil {
		// In the original's spelling it is accepted, as the original
		// accepts it: the interface gets no address (resolve notes it).
		_, base := c.RouterSpecs()
		ps.addf(field, "is dynamic, but no router serves DHCP on switch %s (add a dhcp entry for it under %s)", sw, base)
	}
}

// checkRouters checks network.routers against the switches.
func (c *Config) checkRouters(ps *problems, subnets map[string]netip.Prefix) {
	if c.Network.OVN != nil && c.Network.Routers != nil {
		ps.addf("network.ovn", "cannot be given together with network.routers: use one spelling")
	}
	routers, base := c.RouterSpecs()
	gateways := map[netip.Addr]string{} // gateway address → description
	specs, sbase := c.SwitchSpecs()
	for _, name := range sortedKeys(specs) {
		if a, ok := externalHostAddr(specs[name], subnets[name]); ok {
			field := sbase + "." + name + ".external"
			if !specs[name].External {
				field = sbase + "." + name + ".ports"
			}
			gateways[a] = "the host's side of external switch " + name + " (" + c.where(field) + ")"
		}
	}
	for _, name := range sortedKeys(routers) {
		r := routers[name]
		rp := base + "." + name
		if !api.ValidName(name) {
			ps.addf(rp, "is not a valid router name: %s", nameRule)
		}
		if len(r.Ports) == 0 {
			ps.addf(rp+".ports", "must list at least one port")
		}
		attached := map[string]netip.Prefix{} // switch → subnet, of this router's ports
		onSwitch := map[string]int{}
		for i, p := range r.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", rp, i)
			subnet, known := subnets[p.Switch]
			switch {
			case p.Switch == "":
				ps.addf(pp+".switch", "is required")
			case !known:
				_, sbase := c.SwitchSpecs()
				ps.addf(pp+".switch", "%s is not defined under %s", p.Switch, sbase)
			default:
				if prev, dup := onSwitch[p.Switch]; dup {
					ps.addf(pp+".switch", "%s already has port %s.ports[%d] of this router: give one port per switch", p.Switch, rp, prev)
				} else {
					onSwitch[p.Switch] = i
					attached[p.Switch] = subnet
				}
			}
			if p.MAC != "" {
				if _, err := parseMAC(p.MAC); err != nil {
					ps.addf(pp+".mac", "%s %v", p.MAC, err)
				}
			}
			if p.GatewayIP == "" {
				ps.addf(pp+".gateway_ip", "is required (an address with prefix, e.g. 10.0.0.1/24)")
				continue
			}
			gw, err := netip.ParsePrefix(p.GatewayIP)
			if err != nil || gw.Addr().Zone() != "" {
				ps.addf(pp+".gateway_ip", "%s is not an address with prefix (e.g. 10.0.0.1/24)", p.GatewayIP)
				continue
			}
			if prev, dup := gateways[gw.Addr()]; dup {
				ps.addf(pp+".gateway_ip", "%s is already %s", gw.Addr(), prev)
			} else {
				gateways[gw.Addr()] = "the gateway of " + c.where(pp+".gateway_ip")
			}
			if !known || !subnet.IsValid() {
				continue
			}
			if msg := misplaced(gw.Addr(), p.Switch, subnet); msg != "" {
				ps.addf(pp+".gateway_ip", "%s %s", gw.Addr(), msg)
			} else if gw.Bits() != subnet.Bits() {
				ps.addf(pp+".gateway_ip", "%s has prefix /%d, but switch %s subnet is %s", p.GatewayIP, gw.Bits(), p.Switch, subnet)
			}
		}
		c.checkRoutes(ps, rp, r)
		c.checkNAT(ps, rp, r)
		c.checkDHCP(ps, rp, r, attached)
	}
	c.checkGuestsNotGateways(ps, gateways)
}

func (c *Config) checkRoutes(ps *problems, rp string, r RouterSpec) {
	for i, s := range r.StaticRoutes {
		sp := fmt.Sprintf("%s.static_routes[%d]", rp, i)
		if p, err := netip.ParsePrefix(s.Prefix); err != nil {
			ps.addf(sp+".prefix", "%q is not a CIDR prefix (e.g. 0.0.0.0/0)", s.Prefix)
		} else if p != p.Masked() {
			ps.addf(sp+".prefix", "%s has host bits set: the prefix is %s", s.Prefix, p.Masked())
		}
		nh, err := netip.ParseAddr(s.Nexthop)
		if err != nil || nh.Zone() != "" {
			ps.addf(sp+".nexthop", "%q is not an IP address", s.Nexthop)
		}
		// A next hop no port reaches is accepted, as OVN accepts it: the
		// route is not installed and the action's log says so (State.Notes).
	}
}

func (c *Config) checkNAT(ps *problems, rp string, r RouterSpec) {
	for i, n := range r.NAT {
		np := fmt.Sprintf("%s.nat[%d]", rp, i)
		switch n.NATType {
		case NATSnat, NATDnatAndSnat:
		case "":
			ps.addf(np+".nat_type", "is required (%s or %s)", NATSnat, NATDnatAndSnat)
		default:
			ps.addf(np+".nat_type", "%q is not %s or %s", n.NATType, NATSnat, NATDnatAndSnat)
		}
		if _, err := parseAddrOrPrefix(n.LogicalIP); err != nil {
			ps.addf(np+".logical_ip", "%q is not an IP address or CIDR prefix", n.LogicalIP)
		} else if n.NATType == NATDnatAndSnat {
			if _, err := netip.ParseAddr(n.LogicalIP); err != nil {
				ps.addf(np+".logical_ip", "%s must be one address for %s", n.LogicalIP, NATDnatAndSnat)
			}
		}
		ext, err := netip.ParseAddr(n.ExternalIP)
		if err != nil || ext.Zone() != "" {
			ps.addf(np+".external_ip", "%q is not an IP address", n.ExternalIP)
		}
		// An external address on no attached switch is accepted, as OVN
		// accepts it: the rule is not applied and the log says so.
	}
}

func (c *Config) checkDHCP(ps *problems, rp string, r RouterSpec, attached map[string]netip.Prefix) {
	seen := map[string]bool{}
	for i, d := range r.DHCP {
		dp := fmt.Sprintf("%s.dhcp[%d]", rp, i)
		subnet, ok := attached[d.Switch]
		switch {
		case d.Switch == "":
			ps.addf(dp+".switch", "is required")
			continue
		case !ok:
			ps.addf(dp+".switch", "%s is not a switch the router has a port on (%s)", d.Switch, describeAttached(attached))
			continue
		case seen[d.Switch]:
			ps.addf(dp+".switch", "%s is served twice", d.Switch)
			continue
		}
		seen[d.Switch] = true
		if !subnet.Addr().Is4() {
			ps.addf(dp+".switch", "%s has subnet %s: DHCP serves IPv4 subnets only", d.Switch, subnet)
			continue
		}
		if d.ExcludeIPs == nil {
			continue
		}
		var from, to netip.Addr
		for _, f := range []struct {
			name, val string
			out       *netip.Addr
		}{{"from", d.ExcludeIPs.From, &from}, {"to", d.ExcludeIPs.To, &to}} {
			a, err := netip.ParseAddr(f.val)
			switch {
			case err != nil:
				ps.addf(dp+".exclude_ips."+f.name, "%q is not an IP address", f.val)
			case !subnet.IsValid():
			case !subnet.Contains(a):
				ps.addf(dp+".exclude_ips."+f.name, "%s is outside switch %s subnet %s", a, d.Switch, subnet)
			default:
				*f.out = a
			}
		}
		if from.IsValid() && to.IsValid() && to.Less(from) {
			ps.addf(dp+".exclude_ips.to", "%s comes before from %s", to, from)
		}
	}
}

// checkGuestsNotGateways: no guest may take an address a router port has.
func (c *Config) checkGuestsNotGateways(ps *problems, gateways map[netip.Addr]string) {
	if len(gateways) == 0 {
		return
	}
	for i, m := range c.Machines {
		for j, a := range m.Network {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				continue
			}
			if gw, ok := gateways[ip]; ok {
				ps.addf(fmt.Sprintf("machines[%d].network[%d].ip", i, j), "%s is already %s", ip, gw)
			}
		}
	}
}

func describeAttached(attached map[string]netip.Prefix) string {
	if len(attached) == 0 {
		return "it has none"
	}
	s := ""
	for i, sw := range sortedKeys(attached) {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %s", sw, attached[sw])
	}
	return s
}

// parseAddrOrPrefix reads 10.0.0.5 as 10.0.0.5/32 and a CIDR as itself.
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// externalHostAddr is the address the host's side of an external switch
// takes: .1 of network.switches' external subnet, or the original's
// default for a switch port with localnet.
func externalHostAddr(s SwitchSpec, subnet netip.Prefix) (netip.Addr, bool) {
	switch {
	case s.External && subnet.IsValid() && subnet.Addr().Is4():
		return subnet.Addr().Next(), true
	case s.external() && !s.External:
		p := netip.MustParsePrefix(DefaultExternalAddress)
		return p.Addr(), true
	}
	return netip.Addr{}, false
}
