package ovn

import (
	"context"
	"fmt"
	"maps"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/testbedos/testbedos/internal/topology"
)

// SwitchSpec is one logical switch with its ports, DHCP and DNS, written
// whole.
type SwitchSpec struct {
	// Name is the logical switch's name, unique among every deployment's.
	Name string `json:"name"`
	// Deployment owns every row made for it.
	Deployment string `json:"deployment"`
	// Subnet and ExcludeIPs let OVN give dynamic addresses to ports
	// ("MAC dynamic"); ExcludeIPs as OVN writes it ("10.0.0.1..10.0.0.9").
	Subnet     string     `json:"subnet,omitempty"`
	ExcludeIPs string     `json:"exclude_ips,omitempty"`
	Ports      []PortSpec `json:"ports"`
	// DHCP, when set, is served by OVN to every port with DHCP set.
	DHCP *DHCPSpec `json:"dhcp,omitempty"`
	// DNS maps names to addresses that OVN answers on this switch.
	DNS map[string]string `json:"dns,omitempty"`
	// DynamicDNS names the guest behind each logical port of the
	// deployment whose address OVN assigns ("MAC dynamic"): once OVN has,
	// the name resolves to it too (dns.go).
	DynamicDNS map[string]string `json:"dynamic_dns,omitempty"`
	// Provider, when set, joins the switch to the host through a localnet
	// port on that provider network (provider.go).
	Provider *ProviderSpec `json:"provider,omitempty"`
	// HostPort: the host gets an interface on the switch, named like the
	// switch (an internal port of the integration bridge): the server
	// reaches guests' link-local addresses through it, as through a Linux
	// bridge.
	HostPort bool `json:"host_port,omitempty"`
	// External is the switch as the host's side of it needs it (address,
	// masquerading table), for the engine; nil: no host side.
	External *topology.Switch `json:"external,omitempty"`
}

// PortSpec is one logical switch port.
type PortSpec struct {
	Name string `json:"name"`
	// Type is "" for a guest's port, "router" or "localnet".
	Type      string            `json:"type,omitempty"`
	Addresses []string          `json:"addresses,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	DHCP      bool              `json:"dhcp,omitempty"`
}

// DHCPSpec is a DHCP_Options row: OVN's option names and values.
type DHCPSpec struct {
	CIDR    string            `json:"cidr"`
	Options map[string]string `json:"options"`
}

// HasSwitch reports whether a logical switch called name exists.
func (n *Network) HasSwitch(name string) bool {
	var found []LogicalSwitch
	n.nb.WhereCache(func(ls *LogicalSwitch) bool { return ls.Name == name }).List(context.Background(), &found)
	return len(found) > 0
}

// HasRouter reports whether a logical router called name exists.
func (n *Network) HasRouter(name string) bool {
	var found []LogicalRouter
	n.nb.WhereCache(func(lr *LogicalRouter) bool { return lr.Name == name }).List(context.Background(), &found)
	return len(found) > 0
}

// PutSwitch writes the switch as spec says in one transaction, replacing
// a switch of that name and its DHCP and DNS rows.
func (n *Network) PutSwitch(ctx context.Context, spec SwitchSpec) error {
	ops, err := n.deleteSwitchOps(spec.Name)
	if err != nil {
		return err
	}
	ids := owned(spec.Deployment, spec.Name)
	ls := &LogicalSwitch{UUID: "ls", Name: spec.Name, ExternalIDs: ids, OtherConfig: map[string]string{}}
	if spec.Subnet != "" {
		ls.OtherConfig["subnet"] = spec.Subnet
		if spec.ExcludeIPs != "" {
			ls.OtherConfig["exclude_ips"] = spec.ExcludeIPs
		}
	}
	var rows []model.Model
	var dhcp string
	if spec.DHCP != nil {
		dhcp = "dhcp"
		rows = append(rows, &DHCPOptions{UUID: dhcp, CIDR: spec.DHCP.CIDR, Options: spec.DHCP.Options, ExternalIDs: ids})
	}
	if len(spec.DNS) > 0 || len(spec.DynamicDNS) > 0 {
		rows = append(rows, &DNS{UUID: "dns", Records: maps.Clone(spec.DNS), ExternalIDs: ids})
		ls.DNSRecords = []string{"dns"}
	}
	for i, p := range spec.Ports {
		lsp := &LogicalSwitchPort{UUID: fmt.Sprintf("lsp%d", i), Name: p.Name, Type: p.Type,
			Addresses: p.Addresses, Options: p.Options, ExternalIDs: ids}
		if p.DHCP && dhcp != "" {
			lsp.DHCPv4Options = &dhcp
		}
		rows = append(rows, lsp)
		ls.Ports = append(ls.Ports, lsp.UUID)
	}
	if spec.HostPort {
		lsp := &LogicalSwitchPort{UUID: "hostport", Name: hostPortLSP(spec.Name), Addresses: []string{"unknown"}, ExternalIDs: ids}
		rows = append(rows, lsp)
		ls.Ports = append(ls.Ports, lsp.UUID)
	}
	if spec.Provider != nil {
		lsp := &LogicalSwitchPort{UUID: "localnet", Name: "ln-" + spec.Name, Type: "localnet",
			Addresses: []string{"unknown"}, Options: map[string]string{"network_name": spec.Provider.Network}, ExternalIDs: ids}
		rows = append(rows, lsp)
		ls.Ports = append(ls.Ports, lsp.UUID)
	}
	rows = append(rows, ls)
	create, err := n.nb.Create(rows...)
	if err != nil {
		return err
	}
	_, err = transact(ctx, n.nb, append(ops, create...)...)
	if err != nil {
		return fmt.Errorf("logical switch %s: %w", spec.Name, err)
	}
	if err := n.fillDynamicDNS(ctx, spec); err != nil {
		return err
	}
	if spec.HostPort {
		return n.ensureHostPort(ctx, spec.Name)
	}
	return nil
}

// DeleteSwitch removes the logical switch, its DHCP and DNS rows and the
// OVS ports bound to it; a missing one is fine.
func (n *Network) DeleteSwitch(ctx context.Context, name string) error {
	ops, err := n.deleteSwitchOps(name)
	if err != nil {
		return err
	}
	if _, err := transact(ctx, n.nb, ops...); err != nil {
		return fmt.Errorf("delete logical switch %s: %w", name, err)
	}
	hadHost := n.HasPort(name)
	if err := n.deletePorts(ctx, name); err != nil {
		return err
	}
	if hadHost {
		return n.waitLinkGone(ctx, name)
	}
	return nil
}

// RemoveLocalnetPatch removes the patch port ovn-controller made on the
// integration bridge for the localnet port of logical switch name, once
// the switch is gone (ovn-controller may not notice soon); a missing one
// is fine.
func (n *Network) RemoveLocalnetPatch(ctx context.Context, name string) error {
	br, err := n.bridgeRow(IntegrationBridge)
	if err != nil {
		return nil
	}
	patch := "patch-br-int-to-ln-" + name
	ops, err := n.deletePortOps(br, func(p *Port) bool { return p.Name == patch })
	if err != nil {
		return err
	}
	if _, err := transact(ctx, n.ovs, ops...); err != nil {
		return fmt.Errorf("remove %s: %w", patch, err)
	}
	return nil
}

// deleteSwitchOps deletes the switch called name (its ports and ACLs go
// with it) and the root rows made for it.
func (n *Network) deleteSwitchOps(name string) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for _, del := range []func() ([]ovsdb.Operation, error){
		n.nb.WhereCache(func(ls *LogicalSwitch) bool { return ls.Name == name }).Delete,
		n.nb.WhereCache(func(d *DHCPOptions) bool { return ownedBy(d.ExternalIDs, name) }).Delete,
		n.nb.WhereCache(func(d *DNS) bool { return ownedBy(d.ExternalIDs, name) }).Delete,
	} {
		o, err := del()
		if err != nil {
			return nil, err
		}
		ops = append(ops, o...)
	}
	return ops, nil
}

// RouterSpec is one logical router with its ports, routes and NAT.
type RouterSpec struct {
	Name       string           `json:"name"`
	Deployment string           `json:"deployment"`
	Ports      []RouterPortSpec `json:"ports"`
	Routes     []RouteSpec      `json:"routes,omitempty"`
	NAT        []NATSpec        `json:"nat,omitempty"`
}

// RouterPortSpec is one logical router port; GatewayChassis, when set,
// makes it the router's distributed gateway port on that chassis (NAT
// needs one).
type RouterPortSpec struct {
	Name           string   `json:"name"`
	MAC            string   `json:"mac"`
	Networks       []string `json:"networks"`
	GatewayChassis string   `json:"gateway_chassis,omitempty"`
}

// RouteSpec is a static route.
type RouteSpec struct {
	Prefix  string `json:"prefix"`
	Nexthop string `json:"nexthop"`
}

// NATSpec is a NAT rule as OVN takes it ("snat", "dnat",
// "dnat_and_snat").
type NATSpec struct {
	Type       string `json:"type"`
	ExternalIP string `json:"external_ip"`
	LogicalIP  string `json:"logical_ip"`
}

// PutRouter writes the router as spec says in one transaction, replacing a
// router of that name.
func (n *Network) PutRouter(ctx context.Context, spec RouterSpec) error {
	ops, err := n.nb.WhereCache(func(lr *LogicalRouter) bool { return lr.Name == spec.Name }).Delete()
	if err != nil {
		return err
	}
	ids := owned(spec.Deployment, spec.Name)
	lr := &LogicalRouter{UUID: "lr", Name: spec.Name, ExternalIDs: ids}
	var rows []model.Model
	for i, p := range spec.Ports {
		lrp := &LogicalRouterPort{UUID: fmt.Sprintf("lrp%d", i), Name: p.Name, MAC: p.MAC, Networks: p.Networks, ExternalIDs: ids}
		if p.GatewayChassis != "" {
			gc := &GatewayChassis{UUID: fmt.Sprintf("gc%d", i), Name: p.Name + "-" + p.GatewayChassis,
				ChassisName: p.GatewayChassis, Priority: 1, ExternalIDs: ids}
			rows = append(rows, gc)
			lrp.GatewayChassis = []string{gc.UUID}
		}
		rows = append(rows, lrp)
		lr.Ports = append(lr.Ports, lrp.UUID)
	}
	for i, r := range spec.Routes {
		row := &LogicalRouterStaticRoute{UUID: fmt.Sprintf("route%d", i), IPPrefix: r.Prefix, Nexthop: r.Nexthop, ExternalIDs: ids}
		rows = append(rows, row)
		lr.StaticRoutes = append(lr.StaticRoutes, row.UUID)
	}
	for i, r := range spec.NAT {
		row := &NAT{UUID: fmt.Sprintf("nat%d", i), Type: r.Type, ExternalIP: r.ExternalIP, LogicalIP: r.LogicalIP, ExternalIDs: ids}
		rows = append(rows, row)
		lr.NAT = append(lr.NAT, row.UUID)
	}
	create, err := n.nb.Create(append(rows, lr)...)
	if err != nil {
		return err
	}
	if _, err := transact(ctx, n.nb, append(ops, create...)...); err != nil {
		return fmt.Errorf("logical router %s: %w", spec.Name, err)
	}
	return nil
}

// DeleteRouter removes the logical router (its ports, routes and NAT go
// with it); a missing one is fine.
func (n *Network) DeleteRouter(ctx context.Context, name string) error {
	ops, err := n.nb.WhereCache(func(lr *LogicalRouter) bool { return lr.Name == name }).Delete()
	if err != nil {
		return err
	}
	if _, err := transact(ctx, n.nb, ops...); err != nil {
		return fmt.Errorf("delete logical router %s: %w", name, err)
	}
	return nil
}

// ACLSpec is one ACL as OVN takes it: match and action as written.
type ACLSpec struct {
	Direction string `json:"direction"`
	Priority  int    `json:"priority"`
	Match     string `json:"match"`
	Action    string `json:"action"`
}

// aclKey marks the ACLs this package put on a switch, apart from the
// switch's own rows.
const aclKey = "testbedos-acl"

// PutACLs replaces the ACLs PutACLs put on the logical switch before with
// acls, in one transaction.
func (n *Network) PutACLs(ctx context.Context, dep, ls string, acls []ACLSpec) error {
	sw, err := n.switchRow(ls)
	if err != nil {
		return err
	}
	ops, err := n.unlinkACLs(sw)
	if err != nil {
		return err
	}
	ids := maps.Clone(owned(dep, ls))
	ids[aclKey] = "1"
	var rows []model.Model
	var uuids []string
	for i, a := range acls {
		row := &ACL{UUID: fmt.Sprintf("acl%d", i), Direction: a.Direction, Priority: a.Priority, Match: a.Match, Action: a.Action, ExternalIDs: ids}
		rows = append(rows, row)
		uuids = append(uuids, row.UUID)
	}
	if len(rows) > 0 {
		create, err := n.nb.Create(rows...)
		if err != nil {
			return err
		}
		ops = append(ops, create...)
		mut, err := n.nb.Where(sw).Mutate(sw, model.Mutation{Field: &sw.ACLs, Mutator: ovsdb.MutateOperationInsert, Value: uuids})
		if err != nil {
			return err
		}
		ops = append(ops, mut...)
	}
	if _, err := transact(ctx, n.nb, ops...); err != nil {
		return fmt.Errorf("ACLs of logical switch %s: %w", ls, err)
	}
	return nil
}

// DeleteACLs removes the ACLs PutACLs put on the logical switch; a missing
// switch is fine.
func (n *Network) DeleteACLs(ctx context.Context, ls string) error {
	sw, err := n.switchRow(ls)
	if err != nil {
		return nil
	}
	ops, err := n.unlinkACLs(sw)
	if err != nil {
		return err
	}
	_, err = transact(ctx, n.nb, ops...)
	return err
}

// HasACLs reports how many of this package's ACLs the switch carries.
func (n *Network) HasACLs(ls string) int {
	sw, err := n.switchRow(ls)
	if err != nil {
		return 0
	}
	return len(n.ourACLs(sw))
}

func (n *Network) ourACLs(sw *LogicalSwitch) []string {
	var out []string
	for _, id := range sw.ACLs {
		a := &ACL{UUID: id}
		if n.nb.Get(context.Background(), a) == nil && a.ExternalIDs[aclKey] != "" {
			out = append(out, id)
		}
	}
	return out
}

// unlinkACLs takes this package's ACLs off sw (the rows go with their
// last reference).
func (n *Network) unlinkACLs(sw *LogicalSwitch) ([]ovsdb.Operation, error) {
	ours := n.ourACLs(sw)
	if len(ours) == 0 {
		return nil, nil
	}
	return n.nb.Where(sw).Mutate(sw, model.Mutation{Field: &sw.ACLs, Mutator: ovsdb.MutateOperationDelete, Value: ours})
}

func (n *Network) switchRow(name string) (*LogicalSwitch, error) {
	var found []LogicalSwitch
	if err := n.nb.WhereCache(func(ls *LogicalSwitch) bool { return ls.Name == name }).List(context.Background(), &found); err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no logical switch %s", name)
	}
	return &found[0], nil
}

// Owned lists the names of the logical switches and routers deployment
// dep owns.
func (n *Network) Owned(dep string) (switches, routers []string) {
	var ls []LogicalSwitch
	n.nb.WhereCache(func(x *LogicalSwitch) bool { return x.ExternalIDs[KeyDeployment] == dep }).List(context.Background(), &ls)
	for _, x := range ls {
		switches = append(switches, x.Name)
	}
	var lr []LogicalRouter
	n.nb.WhereCache(func(x *LogicalRouter) bool { return x.ExternalIDs[KeyDeployment] == dep }).List(context.Background(), &lr)
	for _, x := range lr {
		routers = append(routers, x.Name)
	}
	return switches, routers
}
