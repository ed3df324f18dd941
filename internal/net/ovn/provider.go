package ovn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/topology"
)

// A provider network joins a logical switch to the host: the switch's
// localnet port names the network, ovn-controller patches it to the OVS
// bridge the host maps the network to (external_ids:ovn-bridge-mappings),
// and that bridge's internal port is the host's interface on the switch.

// ProviderSpec is a switch's provider network.
type ProviderSpec struct {
	// Network is the localnet port's network_name; Bridge the OVS bridge
	// the host maps it to, whose internal port (of the same name) carries
	// the host's address.
	Network string `json:"network"`
	Bridge  string `json:"bridge"`
	// Own: the bridge and its mapping are this switch's (made and removed
	// with it); otherwise a mapping of the host's own that is only used.
	Own bool `json:"own"`
	// Shared: a provider network of the host (host.json's
	// bridge_mappings), which every deployment naming it uses; Bridge is
	// then the mapped one (ProviderBridge), and only a bridge this package
	// made is ever removed.
	Shared bool `json:"shared,omitempty"`
}

// ProviderBridge is the OVS bridge provider network net is mapped to:
// host.json's bridge_mappings, or a bridge named for the network.
func (n *Network) ProviderBridge(net string) string {
	if br := n.mappings[net]; br != "" {
		return br
	}
	return topology.ProviderBridgeName(net)
}

// resolve fills a shared provider network's bridge from the mappings.
func (n *Network) resolve(p ProviderSpec) ProviderSpec {
	if p.Shared {
		p.Bridge = n.ProviderBridge(p.Network)
	}
	return p
}

const mappingsKey = "ovn-bridge-mappings"

// Mappings are the host's bridge mappings: provider network → OVS bridge.
func (n *Network) Mappings() map[string]string {
	row, err := n.switchConfig()
	if err != nil {
		return nil
	}
	return parseMappings(row.ExternalIDs[mappingsKey])
}

func parseMappings(s string) map[string]string {
	out := map[string]string{}
	for _, m := range strings.Split(s, ",") {
		if net, br, ok := strings.Cut(strings.TrimSpace(m), ":"); ok {
			out[net] = br
		}
	}
	return out
}

func formatMappings(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+":"+m[k])
	}
	return strings.Join(parts, ",")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EnsureProvider makes p's OVS bridge with its internal port (userspace
// datapath where the kernel has no openvswitch module) and maps p.Network
// to it, then waits for the internal port's link and sets it up.
func (n *Network) EnsureProvider(ctx context.Context, p ProviderSpec) error {
	if !p.Own {
		return nil
	}
	p = n.resolve(p)
	row, err := n.switchConfig()
	if err != nil {
		return err
	}
	ops, err := n.bridgeOps(row, p.Bridge, map[string]string{KeyObject: p.Network})
	if err != nil {
		return err
	}
	m := parseMappings(row.ExternalIDs[mappingsKey])
	if m[p.Network] != p.Bridge {
		m[p.Network] = p.Bridge
		ids := maps.Clone(row.ExternalIDs)
		ids[mappingsKey] = formatMappings(m)
		row.ExternalIDs = ids
		upd, err := n.ovs.Where(row).Update(row, &row.ExternalIDs)
		if err != nil {
			return err
		}
		ops = append(ops, upd...)
	}
	if _, err := transact(ctx, n.ovs, ops...); err != nil {
		return fmt.Errorf("provider network %s on OVS bridge %s: %w", p.Network, p.Bridge, err)
	}
	return n.linkUp(ctx, p.Bridge)
}

// bridgeOps makes the OVS bridge name, with its internal port and the
// system ports extra, when it is missing (userspace datapath where the
// kernel has no openvswitch module).
func (n *Network) bridgeOps(row *OpenvSwitch, name string, ids map[string]string, extra ...string) ([]ovsdb.Operation, error) {
	if _, err := n.bridgeRow(name); err == nil {
		return nil, nil
	}
	rows := []model.Model{
		&Interface{UUID: "iface", Name: name, Type: "internal"},
		&Port{UUID: "port", Name: name, Interfaces: []string{"iface"}},
	}
	br := &Bridge{UUID: "br", Name: name, Ports: []string{"port"}, ExternalIDs: ids}
	for i, nic := range extra {
		iface, port := fmt.Sprintf("xiface%d", i), fmt.Sprintf("xport%d", i)
		rows = append(rows, &Interface{UUID: iface, Name: nic}, &Port{UUID: port, Name: nic, Interfaces: []string{iface}})
		br.Ports = append(br.Ports, port)
	}
	if n.netdev {
		br.DatapathType = "netdev"
	}
	create, err := n.ovs.Create(append(rows, br)...)
	if err != nil {
		return nil, err
	}
	mut, err := n.ovs.Where(row).Mutate(row, model.Mutation{Field: &row.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{"br"}})
	if err != nil {
		return nil, err
	}
	return append(create, mut...), nil
}

// AddUnderlay puts the host's underlay link nic on an OVS bridge of its
// own, bridge, and moves the host's underlay address cidr onto the
// bridge's interface: on the userspace datapath Geneve to other chassis
// leaves through that bridge (OVS routes and resolves tunnel endpoints
// itself). With the kernel datapath nothing is needed.
func (n *Network) AddUnderlay(ctx context.Context, bridge, nic, cidr string) error {
	row, err := n.switchConfig()
	if err != nil {
		return err
	}
	ops, err := n.bridgeOps(row, bridge, nil, nic)
	if err != nil {
		return err
	}
	if _, err := transact(ctx, n.ovs, ops...); err != nil {
		return fmt.Errorf("underlay bridge %s: %w", bridge, err)
	}
	if err := n.linkUp(ctx, bridge); err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	return n.inNetns(func() error {
		for _, name := range []string{nic, bridge} {
			link, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if name == nic {
				if err := netlink.AddrDel(link, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					return fmt.Errorf("address %s off %s: %w", cidr, nic, err)
				}
				if err := netlink.LinkSetUp(link); err != nil {
					return err
				}
				continue
			}
			if err := netlink.AddrReplace(link, addr); err != nil {
				return fmt.Errorf("address %s on %s: %w", cidr, bridge, err)
			}
		}
		return nil
	})
}

// DeleteProvider removes p's mapping and OVS bridge when they are the
// switch's own; missing ones are fine.
func (n *Network) DeleteProvider(ctx context.Context, p ProviderSpec) error {
	if !p.Own {
		return nil
	}
	p = n.resolve(p)
	row, err := n.switchConfig()
	if err != nil {
		return err
	}
	br, brErr := n.bridgeRow(p.Bridge)
	if p.Shared && (brErr != nil || br.ExternalIDs[KeyObject] != p.Network) {
		return nil // the host's own bridge and mapping, not this package's
	}
	var ops []ovsdb.Operation
	m := parseMappings(row.ExternalIDs[mappingsKey])
	if _, ok := m[p.Network]; ok {
		delete(m, p.Network)
		ids := maps.Clone(row.ExternalIDs)
		if len(m) == 0 {
			delete(ids, mappingsKey)
		} else {
			ids[mappingsKey] = formatMappings(m)
		}
		row.ExternalIDs = ids
		upd, err := n.ovs.Where(row).Update(row, &row.ExternalIDs)
		if err != nil {
			return err
		}
		ops = append(ops, upd...)
	}
	if brErr == nil {
		mut, err := n.ovs.Where(row).Mutate(row, model.Mutation{Field: &row.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{br.UUID}})
		if err != nil {
			return err
		}
		ops = append(ops, mut...)
	}
	if _, err := transact(ctx, n.ovs, ops...); err != nil {
		return fmt.Errorf("remove provider network %s: %w", p.Network, err)
	}
	return n.waitLinkGone(ctx, p.Bridge)
}

// HasProvider reports whether p's bridge is there (always, for a mapping
// of the host's own).
func (n *Network) HasProvider(p ProviderSpec) bool {
	if !p.Own {
		return true
	}
	_, err := n.bridgeRow(n.resolve(p).Bridge)
	return err == nil
}
