package topology

import (
	"net/netip"
	"sort"
)

// The management network (testbed_options.management): every guest gets
// one more interface, ManagementInterface, on a switch of the deployment's
// own named ManagementSwitch, whose host side (on the main host) takes the
// subnet's first address, as an external switch's does. The host resolves
// <guest>.<deployment>.tbos to each guest's address there (the engine
// writes them into the host's hosts file), and so do the guests:
// netns guests share the host's files, docker guests get them as the
// container's extra hosts, libvirt guests with cloud-init in /etc/hosts.

// Management is testbed_options.management.
type Management struct {
	// Subnet is an IPv4 CIDR with room for the host and every guest.
	Subnet string `yaml:"subnet"`
}

// ManagementSwitch names the management network's switch; a deployment
// with management cannot have a switch of that name.
const ManagementSwitch = "mgmt"

// ManagementInterface is the guests' interface on the management network.
const ManagementInterface = "mgmt0"

// NameDomain ends every management host name: <guest>.<deployment>.tbos.
const NameDomain = "tbos"

// ManagementName is the host name of a guest on the management network.
func ManagementName(deployment, guest string) string {
	return guest + "." + deployment + "." + NameDomain
}

// ManagedNames is the management network of the state: each guest's host
// name and address, sorted by name. Empty without management.
type ManagedNames []NameAddress

// NameAddress is one host name and its IPv4 address.
type NameAddress struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Names lists the management host names of st's guests.
func Names(st *State) ManagedNames {
	var out ManagedNames
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			if ifc.Switch == ManagementSwitch && ifc.Name == ManagementInterface {
				if p, err := netip.ParsePrefix(ifc.Address); err == nil {
					out = append(out, NameAddress{Name: ManagementName(st.Deployment, g.Name), Address: p.Addr().String()})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// resolveManagement adds the management switch and every guest's mgmt0.
// It runs after the guests are resolved, so their other interfaces keep
// their indexes (eth0, eth1, …) and mgmt0 comes last.
func (c *Config) resolveManagement(st *State, ps *problems) {
	m := c.TestbedOptions.Management
	if m == nil {
		return
	}
	const field = "testbed_options.management"
	p, err := netip.ParsePrefix(m.Subnet)
	switch {
	case m.Subnet == "":
		ps.addf(field+".subnet", "is required: an IPv4 subnet such as 172.31.0.0/24")
		return
	case err != nil || !p.Addr().Is4():
		ps.addf(field+".subnet", "%q is not an IPv4 subnet such as 172.31.0.0/24", m.Subnet)
		return
	}
	p = p.Masked()
	if room := 1<<(32-p.Bits()) - 3; room < len(st.Guests) {
		ps.addf(field+".subnet", "%s has room for %d guests besides the host; the deployment has %d", p, max(room, 0), len(st.Guests))
		return
	}
	for _, sw := range st.Switches {
		if sw.Name == ManagementSwitch {
			ps.addf(field, "needs the switch name %s for itself: rename network switch %s", ManagementSwitch, ManagementSwitch)
			return
		}
		if q, err := netip.ParsePrefix(sw.Subnet); err == nil && q.Overlaps(p) {
			ps.addf(field+".subnet", "%s overlaps switch %s's subnet %s", p, sw.Name, q)
			return
		}
	}
	host := p.Addr().Next()
	st.Switches = append(st.Switches, Switch{
		Name: ManagementSwitch, Subnet: p.String(), Bridge: BridgeName(st.Deployment, ManagementSwitch),
		External: &ExternalSide{Address: netip.PrefixFrom(host, p.Bits()).String(), Table: ExternalTable(st.Deployment, ManagementSwitch), Host: mainHost(st)},
	})
	addr := host
	var names []string
	for i := range st.Guests {
		g := &st.Guests[i]
		addr = addr.Next()
		j := len(g.Interfaces)
		g.Interfaces = append(g.Interfaces, Interface{
			Switch: ManagementSwitch, Bridge: BridgeName(st.Deployment, ManagementSwitch),
			Name: ManagementInterface, HostName: HostIfName(st.Deployment, g.Name, j),
			Address: netip.PrefixFrom(addr, p.Bits()).String(), MAC: DefaultMAC(st.Deployment, g.Name, j),
		})
		names = append(names, ManagementName(st.Deployment, g.Name)+":"+addr.String())
	}
	for i := range st.Guests {
		if d := st.Guests[i].Docker; d != nil {
			d.ExtraHosts = names
		}
	}
}

// mainHost is the main host of st (the first when none is marked).
func mainHost(st *State) string {
	for _, h := range st.Hosts {
		if h.Main {
			return h.Name
		}
	}
	if len(st.Hosts) > 0 {
		return st.Hosts[0].Name
	}
	return ""
}
