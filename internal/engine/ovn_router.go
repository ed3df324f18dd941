package engine

import (
	"context"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/topology"
)

// A router is a logical router named like its namespace with the bridge
// backend: one logical router port per attached switch (peer of the
// switch's router-type port), its static routes and NAT as written. A port
// that NAT rules go out of is the router's distributed gateway port, on
// the main host's chassis.

var ovnRouterKind = &ovnKind[ovn.RouterSpec]{
	name:    "routers",
	noun:    "router",
	change:  api.KindRouter,
	records: func(h *HostRecord) *map[string]OVNRecord[ovn.RouterSpec] { return &h.OVNRouters },
	wanted:  ovnRouters,
	put: func(ctx context.Context, _ Host, n *ovn.Network, _, _ string, spec ovn.RouterSpec) error {
		return n.PutRouter(ctx, spec)
	},
	del: func(ctx context.Context, _ Host, n *ovn.Network, key string, _ ovn.RouterSpec) error {
		return n.DeleteRouter(ctx, key)
	},
	has: func(n *ovn.Network, key string, _ ovn.RouterSpec) bool { return n.HasRouter(key) },
}

// lrpName is the logical router port of router port p.
func lrpName(p topology.RouterPort) string { return "lrp-" + p.HostName }

// ovnRouters are the logical routers st asks for, by name; chassis is
// where gateway ports run ("" when not known: plan compares without it).
func ovnRouters(st *topology.State, chassis string) map[string]OVNRecord[ovn.RouterSpec] {
	out := map[string]OVNRecord[ovn.RouterSpec]{}
	for _, r := range st.Routers {
		spec := ovn.RouterSpec{Name: r.Namespace, Deployment: st.Deployment}
		gateway := map[string]bool{}
		for _, n := range r.NAT {
			gateway[n.OutPort] = true
			spec.NAT = append(spec.NAT, ovn.NATSpec{Type: n.Type, ExternalIP: bareIP(n.ExternalIP), LogicalIP: n.LogicalIP})
		}
		for _, p := range r.Ports {
			lrp := ovn.RouterPortSpec{Name: lrpName(p), MAC: p.MAC, Networks: append([]string{p.Address}, p.Extra...)}
			switch {
			case p.GatewayChassis != "" && p.GatewayChassis != mainHost(st):
				// A client's chassis is named like the host.
				lrp.GatewayChassis = p.GatewayChassis
			case p.GatewayChassis != "" || gateway[p.IfName] || gateway[p.Name]:
				lrp.GatewayChassis = ifThen(chassis == "", "-", chassis)
			}
			spec.Ports = append(spec.Ports, lrp)
		}
		for _, sr := range r.StaticRoutes {
			spec.Routes = append(spec.Routes, ovn.RouteSpec{Prefix: sr.Prefix, Nexthop: sr.Nexthop})
		}
		out[spec.Name] = OVNRecord[ovn.RouterSpec]{Object: r.Name, Spec: spec}
	}
	return out
}
