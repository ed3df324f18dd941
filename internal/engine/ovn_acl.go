package engine

import (
	"context"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/topology"
)

// A switch's ACLs go to OVN as written: direction, priority, match and
// action mean exactly what they mean in OVN. apply_deny_all adds, on every
// switch, a rule of priority 1 each way that drops IP traffic no rule
// allows, DHCP and IPv6 neighbour discovery excepted.

// denyAllMatch is the traffic apply_deny_all drops.
const denyAllMatch = "(ip4 && !(udp.dst == {67, 68})) || (ip6 && !nd && !nd_rs && !nd_ra)"

var ovnACLKind = &ovnKind[[]ovn.ACLSpec]{
	name:    "acl",
	noun:    "acl",
	change:  api.KindACL,
	records: func(h *HostRecord) *map[string]OVNRecord[[]ovn.ACLSpec] { return &h.OVNACLs },
	wanted:  ovnACLs,
	put: func(ctx context.Context, _ Host, n *ovn.Network, dep, key string, spec []ovn.ACLSpec) error {
		return n.PutACLs(ctx, dep, key, spec)
	},
	del: func(ctx context.Context, _ Host, n *ovn.Network, key string, _ []ovn.ACLSpec) error {
		return n.DeleteACLs(ctx, key)
	},
	has: func(n *ovn.Network, key string, _ []ovn.ACLSpec) bool { return n.HasACLs(key) > 0 },
}

// ovnACLs are the ACLs st puts on each logical switch, by switch name.
func ovnACLs(st *topology.State, _ string) map[string]OVNRecord[[]ovn.ACLSpec] {
	if st.ACL == nil {
		return nil
	}
	out := map[string]OVNRecord[[]ovn.ACLSpec]{}
	for _, sw := range st.Switches {
		var acls []ovn.ACLSpec
		for _, r := range st.ACL.Switches[sw.Name] {
			acls = append(acls, ovn.ACLSpec{Direction: r.Direction, Priority: r.Priority, Match: r.Match, Action: r.Action})
		}
		if st.ACL.DenyAll {
			for _, dir := range []string{topology.ACLFromLport, topology.ACLToLport} {
				acls = append(acls, ovn.ACLSpec{Direction: dir, Priority: 1, Match: denyAllMatch, Action: "drop"})
			}
		}
		if len(acls) > 0 {
			out[lsName(st.Deployment, sw)] = OVNRecord[[]ovn.ACLSpec]{Object: sw.Name, Spec: acls}
		}
	}
	return out
}
