package engine

import (
	"context"
	"errors"
	"net/netip"
	"sort"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/topology"
)

// A switch is a logical switch named like its bridge with the bridge
// backend. Its ports are the guests' interfaces (logical port = the host
// end's name, "MAC IP", or "MAC dynamic" for ip: dynamic, which OVN's IPAM
// fills from the subnet) and the routers' ports; a router that serves DHCP
// on it makes a DHCP_Options row (router, DNS server: the router's
// address), and every guest's name resolves on it through a DNS row.

var ovnSwitchKind = &ovnKind[ovn.SwitchSpec]{
	name:    "network",
	noun:    "switch",
	change:  api.KindSwitch,
	records: func(h *HostRecord) *map[string]OVNRecord[ovn.SwitchSpec] { return &h.OVNSwitches },
	wanted:  ovnSwitches,
	put:     putOVNSwitch,
	del:     deleteOVNSwitch,
	keep:    keepSharedProvider,
	has: func(n *ovn.Network, key string, spec ovn.SwitchSpec) bool {
		return n.HasSwitch(key) && (spec.Provider == nil || n.HasProvider(*spec.Provider))
	},
}

// putOVNSwitch writes the logical switch; an external one first gets its
// provider network (an OVS bridge of its own mapped to a network named
// like the switch) and then the host's side on that bridge's interface:
// the address and masquerading out, as with the bridge backend.
func putOVNSwitch(ctx context.Context, host Host, n *ovn.Network, _, _ string, spec ovn.SwitchSpec) error {
	spec = onMappedBridge(n, spec)
	if spec.Provider != nil {
		if err := n.EnsureProvider(ctx, *spec.Provider); err != nil {
			return err
		}
	}
	if err := n.PutSwitch(ctx, spec); err != nil {
		return err
	}
	if spec.External == nil {
		return nil
	}
	r, err := RoutersOf(host)
	if err != nil {
		return err
	}
	_, err = r.EnsureExternal(ctx, *spec.External)
	return err
}

// deleteOVNSwitch undoes putOVNSwitch; what is missing is fine.
func deleteOVNSwitch(ctx context.Context, host Host, n *ovn.Network, key string, spec ovn.SwitchSpec) error {
	spec = onMappedBridge(n, spec)
	var errs []error
	if spec.External != nil {
		if r, err := RoutersOf(host); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, r.DeleteExternal(ctx, *spec.External))
		}
	}
	errs = append(errs, n.DeleteSwitch(ctx, key), n.RemoveLocalnetPatch(ctx, key))
	if spec.Provider != nil {
		errs = append(errs, n.DeleteProvider(ctx, *spec.Provider))
	}
	return errors.Join(errs...)
}

// onMappedBridge puts the host's side of a shared provider network on the
// bridge host.json maps it to.
func onMappedBridge(n *ovn.Network, spec ovn.SwitchSpec) ovn.SwitchSpec {
	if spec.Provider != nil && spec.Provider.Shared && spec.External != nil {
		ext := *spec.External
		ext.Bridge = n.ProviderBridge(spec.Provider.Network)
		spec.External = &ext
	}
	return spec
}

// keepSharedProvider leaves out of a switch's removal the provider network
// and host side another deployment's switch still uses.
func keepSharedProvider(ctx context.Context, env removeEnv, host string, spec ovn.SwitchSpec) (ovn.SwitchSpec, error) {
	if spec.Provider == nil || !spec.Provider.Shared || env.otherHolder == nil {
		return spec, nil
	}
	holder, err := env.otherHolder(ctx, host, func(h *HostRecord) bool {
		for _, r := range h.OVNSwitches {
			if p := r.Spec.Provider; p != nil && p.Shared && p.Network == spec.Provider.Network {
				return true
			}
		}
		return false
	})
	if err != nil || holder == "" {
		return spec, err
	}
	env.log.Printf("    provider network %s stays: deployment %s uses it", spec.Provider.Network, holder)
	spec.Provider, spec.External = nil, nil
	return spec, nil
}

// ovnSwitches are the logical switches st asks for, by name.
func ovnSwitches(st *topology.State, _ string) map[string]OVNRecord[ovn.SwitchSpec] {
	dns, dynamic := guestNames(st), dynamicNames(st)
	out := map[string]OVNRecord[ovn.SwitchSpec]{}
	for _, sw := range st.Switches {
		spec := ovn.SwitchSpec{Name: lsName(st.Deployment, sw), Deployment: st.Deployment, Subnet: sw.Subnet, DNS: dns, DynamicDNS: dynamic}
		pool := dhcpPool(st, sw.Name)
		for _, g := range st.Guests {
			for _, ifc := range g.Interfaces {
				if ifc.Switch != sw.Name {
					continue
				}
				addr := ifc.MAC + " dynamic"
				if !ifc.Dynamic {
					addr = ifc.MAC + " " + bareIP(ifc.Address)
				}
				spec.Ports = append(spec.Ports, ovn.PortSpec{Name: ifc.HostName, Addresses: []string{addr}, DHCP: pool != nil})
			}
		}
		for _, r := range st.Routers {
			for _, p := range r.Ports {
				if p.Switch != sw.Name {
					continue
				}
				spec.Ports = append(spec.Ports, ovn.PortSpec{Name: p.HostName, Type: "router",
					Addresses: []string{"router"}, Options: map[string]string{"router-port": lrpName(p)}})
				if pool != nil && pool.IfName == p.IfName {
					gw := bareIP(p.Address)
					spec.DHCP = &ovn.DHCPSpec{CIDR: sw.Subnet, Options: map[string]string{
						"server_id": gw, "server_mac": p.MAC, "router": gw, "dns_server": gw, "lease_time": "3600",
					}}
				}
			}
		}
		if pool != nil {
			spec.ExcludeIPs = excludeIPs(pool)
		}
		// The host reaches guests through an interface of its own on
		// the switch; an external switch has one already (its provider
		// bridge's).
		spec.HostPort = sw.External == nil
		if sw.External != nil {
			ext := sw
			spec.External = &ext
			spec.Provider = &ovn.ProviderSpec{Network: spec.Name, Bridge: spec.Name, Own: true}
			if n := sw.External.Provider; n != "" {
				// A provider network of the host: its mapped bridge,
				// shared with every lab naming it (the logical switch
				// is this deployment's own).
				spec.Provider = &ovn.ProviderSpec{Network: n, Own: true, Shared: true}
			}
		}
		out[spec.Name] = OVNRecord[ovn.SwitchSpec]{Object: sw.Name, Spec: spec}
	}
	return out
}

// dhcpPool is the DHCP a router serves on switch sw; nil: none.
func dhcpPool(st *topology.State, sw string) *topology.DHCPPool {
	for _, r := range st.Routers {
		for i := range r.DHCP {
			if r.DHCP[i].Switch == sw {
				return &r.DHCP[i]
			}
		}
	}
	return nil
}

// excludeIPs is what OVN's IPAM never hands out on the pool's switch, as
// OVN writes it: the pool's excluded range and its reserved addresses.
func excludeIPs(p *topology.DHCPPool) string {
	var parts []string
	if p.ExcludeFrom != "" && p.ExcludeTo != "" {
		parts = append(parts, p.ExcludeFrom+".."+p.ExcludeTo)
	}
	for _, r := range p.Reserved {
		parts = append(parts, bareIP(r))
	}
	return strings.Join(parts, " ")
}

// guestNames maps every guest's name to its static addresses, for OVN's
// DNS.
func guestNames(st *topology.State) map[string]string {
	out := map[string]string{}
	for _, g := range st.Guests {
		var ips []string
		for _, ifc := range g.Interfaces {
			if !ifc.Dynamic && ifc.Address != "" {
				ips = append(ips, bareIP(ifc.Address))
			}
		}
		if len(ips) > 0 {
			sort.Strings(ips)
			out[strings.ToLower(g.Name)] = strings.Join(ips, " ")
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// dynamicNames maps the logical port of every interface with ip: dynamic
// to its guest's name: OVN's DNS gets the address once OVN has assigned
// it.
func dynamicNames(st *topology.State) map[string]string {
	out := map[string]string{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			if ifc.Dynamic {
				out[ifc.HostName] = strings.ToLower(g.Name)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// bareIP is the address of a CIDR ("10.0.0.1/24" → "10.0.0.1"); anything
// else is returned as it is.
func bareIP(cidr string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		return p.Addr().String()
	}
	return cidr
}
