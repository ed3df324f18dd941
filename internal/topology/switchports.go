package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// The original's switch ports are OVN logical switch ports. On the bridge
// backend a localnet port makes the switch external; a router port is
// already what a router's ports[] entry makes; an internal port (an OVS
// interface on the host) has no counterpart and is not made. The last two
// are accepted and explained in the action's log (State.Notes).

// checkSwitchPorts checks the ports of switch name (field path sp).
func (c *Config) checkSwitchPorts(ps *problems, sp, name string, spec SwitchSpec, subnet netip.Prefix) {
	seen := map[string]int{}
	for i, p := range spec.Ports {
		pp := fmt.Sprintf("%s.ports[%d]", sp, i)
		if p.Name == "" {
			ps.addf(pp+".name", "is required")
		} else if prev, dup := seen[p.Name]; dup {
			ps.addf(pp+".name", "%s is already the name of ports[%d]", p.Name, prev)
		} else {
			seen[p.Name] = i
		}
		var kinds []string
		if p.Localnet != nil {
			kinds = append(kinds, "localnet")
			if p.Localnet.NetworkName == "" {
				ps.addf(pp+".localnet.network_name", "is required (a provider network of host.json's bridge_mappings, e.g. public)")
			}
		}
		if x := p.Internal; x != nil {
			kinds = append(kinds, "internal")
			if x.IP != "" {
				if a, err := netip.ParseAddr(x.IP); err != nil {
					ps.addf(pp+".internal.ip", "%q is not an IP address", x.IP)
				} else if subnet.IsValid() && !subnet.Contains(a) {
					ps.addf(pp+".internal.ip", "%s is outside switch %s subnet %s", a, name, subnet)
				}
			}
			if x.MAC != "" {
				if _, err := parseMAC(x.MAC); err != nil {
					ps.addf(pp+".internal.mac", "%s %v", x.MAC, err)
				}
			}
		}
		if r := p.Router; r != nil {
			kinds = append(kinds, "router")
			if r.RouterPort == "" {
				ps.addf(pp+".router.router_port", "is required (the name of a router's port)")
			}
			if r.MAC != "" {
				if _, err := parseMAC(r.MAC); err != nil {
					ps.addf(pp+".router.mac", "%s %v", r.MAC, err)
				}
			}
		}
		switch len(kinds) {
		case 0:
			ps.addf(pp, "must give one of localnet, internal, router")
		case 1:
		default:
			ps.addf(pp, "gives %s: give exactly one", strings.Join(kinds, " and "))
		}
	}
}

// switchPortNotes explains the ports that mean nothing more on the bridge
// backend.
func (c *Config) switchPortNotes(st *State) {
	specs, base := c.SwitchSpecs()
	routers, _ := c.RouterSpecs()
	routerPorts := map[string]string{} // port name → switch
	for _, r := range routers {
		for _, p := range r.Ports {
			routerPorts[p.Name] = p.Switch
		}
	}
	for _, name := range sortedKeys(specs) {
		for i, p := range specs[name].Ports {
			at := fmt.Sprintf("%s.%s.ports[%d]", base, name, i)
			switch {
			case p.Internal != nil:
				c.note(st, at, "internal port %s of switch %s (an interface of the host on the switch) has no counterpart on the bridge network backend and is not made", p.Name, name)
			case p.Router != nil && routerPorts[p.Router.RouterPort] != name:
				c.note(st, at, "router port %s of switch %s names %s, which no router has on this switch; it connects nothing", p.Name, name, p.Router.RouterPort)
			}
		}
	}
}
