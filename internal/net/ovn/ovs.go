package ovn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/namespace"
)

// GeneveMTU is the MTU of guests' links on a switch spanning hosts: a
// 1500-byte underlay less Geneve's outer headers and OVN's options.
const GeneveMTU = 1400

// IntegrationBridge is the OVS bridge ovn-controller makes and guests'
// ports join.
const IntegrationBridge = "br-int"

// AttachPort makes the existing link name (a veth's host end, a tap) a
// port of the integration bridge bound to the logical port lsp of logical
// switch ls (external_ids:iface-id), replacing a port of that name left
// from before. On the userspace datapath it turns the link's tx checksum
// offload off first: that datapath forwards packets with partial
// checksums, and TCP through it stalls otherwise.
func (n *Network) AttachPort(ctx context.Context, name, ls, lsp string) error {
	if n.netdev {
		if err := n.inNetns(func() error { return txOffloadOff(name) }); err != nil {
			return fmt.Errorf("port %s: %w", name, err)
		}
	}
	br, err := n.integrationBridge(ctx)
	if err != nil {
		return err
	}
	ops, err := n.deletePortOps(br, func(p *Port) bool { return p.Name == name })
	if err != nil {
		return err
	}
	ids := map[string]string{KeyObject: ls}
	iface := &Interface{UUID: "iface", Name: name, ExternalIDs: map[string]string{"iface-id": lsp, KeyObject: ls}}
	port := &Port{UUID: "port", Name: name, Interfaces: []string{"iface"}, ExternalIDs: ids}
	create, err := n.ovs.Create(iface, port)
	if err != nil {
		return err
	}
	mut, err := n.ovs.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{"port"}})
	if err != nil {
		return err
	}
	ops = append(append(ops, create...), mut...)
	if _, err := transact(ctx, n.ovs, ops...); err != nil {
		return fmt.Errorf("port %s on %s: %w", name, IntegrationBridge, err)
	}
	return nil
}

// HasPort reports whether the integration bridge has a port called name
// bound to a logical port.
func (n *Network) HasPort(name string) bool {
	var found []Interface
	n.ovs.WhereCache(func(i *Interface) bool { return i.Name == name && i.ExternalIDs["iface-id"] != "" }).List(context.Background(), &found)
	return len(found) > 0
}

// Ports lists the names of the OVS ports bound to logical switch ls.
func (n *Network) Ports(ls string) []string {
	var found []Port
	n.ovs.WhereCache(func(p *Port) bool { return ownedBy(p.ExternalIDs, ls) }).List(context.Background(), &found)
	var out []string
	for _, p := range found {
		out = append(out, p.Name)
	}
	return out
}

// deletePorts removes the integration bridge's ports bound to logical
// switch ls.
func (n *Network) deletePorts(ctx context.Context, ls string) error {
	return n.deletePortsWhere(ctx, func(p *Port) bool { return ownedBy(p.ExternalIDs, ls) })
}

// DeletePorts removes the integration bridge's ports whose names match.
func (n *Network) DeletePorts(ctx context.Context, match func(name string) bool) error {
	return n.deletePortsWhere(ctx, func(p *Port) bool { return match(p.Name) })
}

func (n *Network) deletePortsWhere(ctx context.Context, match func(*Port) bool) error {
	br, err := n.bridgeRow(IntegrationBridge)
	if err != nil {
		return nil // no bridge, no ports
	}
	ops, err := n.deletePortOps(br, match)
	if err != nil {
		return err
	}
	if _, err := transact(ctx, n.ovs, ops...); err != nil {
		return fmt.Errorf("ports on %s: %w", IntegrationBridge, err)
	}
	return nil
}

// deletePortOps takes the ports that match off br (the Port and Interface
// rows go with their last reference).
func (n *Network) deletePortOps(br *Bridge, match func(*Port) bool) ([]ovsdb.Operation, error) {
	var found []Port
	if err := n.ovs.WhereCache(match).List(context.Background(), &found); err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, nil
	}
	var uuids []string
	for _, p := range found {
		uuids = append(uuids, p.UUID)
	}
	return n.ovs.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: uuids})
}

// integrationBridge waits for ovn-controller to have made br-int.
func (n *Network) integrationBridge(ctx context.Context) (*Bridge, error) {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var br *Bridge
	err := waitFor(wctx, IntegrationBridge, func() bool {
		b, err := n.bridgeRow(IntegrationBridge)
		br = b
		return err == nil
	})
	return br, err
}

func (n *Network) bridgeRow(name string) (*Bridge, error) {
	var found []Bridge
	if err := n.ovs.WhereCache(func(b *Bridge) bool { return b.Name == name }).List(context.Background(), &found); err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no OVS bridge %s", name)
	}
	return &found[0], nil
}

// txOffloadOff turns tx checksum offload off on link name (ethtool -K
// NAME tx off).
func txOffloadOff(name string) error {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("ethtool: %w", err)
	}
	defer e.Close()
	if err := e.Change(name, map[string]bool{"tx-checksum-ip-generic": false}); err != nil {
		return fmt.Errorf("tx checksum offload off: %w", err)
	}
	return nil
}

// hostPortLSP is the logical port of the host's interface on switch ls.
func hostPortLSP(ls string) string { return "h-" + ls }

// ensureHostPort makes the host's interface on logical switch ls: an
// internal port of the integration bridge named ls, bound to the switch's
// host port, up.
func (n *Network) ensureHostPort(ctx context.Context, ls string) error {
	if !n.HasPort(ls) {
		br, err := n.integrationBridge(ctx)
		if err != nil {
			return err
		}
		iface := &Interface{UUID: "iface", Name: ls, Type: "internal", ExternalIDs: map[string]string{"iface-id": hostPortLSP(ls), KeyObject: ls}}
		port := &Port{UUID: "port", Name: ls, Interfaces: []string{"iface"}, ExternalIDs: map[string]string{KeyObject: ls}}
		create, err := n.ovs.Create(iface, port)
		if err != nil {
			return err
		}
		mut, err := n.ovs.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{"port"}})
		if err != nil {
			return err
		}
		if _, err := transact(ctx, n.ovs, append(create, mut...)...); err != nil {
			return fmt.Errorf("host port %s on %s: %w", ls, IntegrationBridge, err)
		}
	}
	return n.linkUp(ctx, ls)
}

// inNetns runs fn in the network namespace the daemons run in.
func (n *Network) inNetns(fn func() error) error {
	if n.netns == "" {
		return fn()
	}
	return namespace.In(namespace.Path(n.netns), fn)
}

// linkUp waits for the link name (an interface ovs-vswitchd makes) and
// sets it up.
func (n *Network) linkUp(ctx context.Context, name string) error {
	return n.inNetns(func() error { return linkUp(ctx, name) })
}

// waitLinkGone waits for ovs-vswitchd to remove the link name.
func (n *Network) waitLinkGone(ctx context.Context, name string) error {
	return n.inNetns(func() error { return waitLinkGone(ctx, name) })
}

func linkUp(ctx context.Context, name string) error {
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var link netlink.Link
	if err := waitFor(wctx, "interface "+name, func() bool {
		l, err := netlink.LinkByName(name)
		link = l
		return err == nil
	}); err != nil {
		return err
	}
	return netlink.LinkSetUp(link)
}

// waitLinkGone waits for ovs-vswitchd to remove the link name, so nothing
// is left when down ends.
func waitLinkGone(ctx context.Context, name string) error {
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return waitFor(wctx, "ovs-vswitchd to remove interface "+name, func() bool {
		_, err := netlink.LinkByName(name)
		var nf netlink.LinkNotFoundError
		return errors.As(err, &nf)
	})
}
