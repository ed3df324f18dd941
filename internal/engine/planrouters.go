package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/aclnft"
	"github.com/testbedos/testbedos/internal/topology"
)

// Routers, external sides and ACL tables in a plan. A router is one
// object with its ports, routes, NAT and DHCP pools: any difference
// re-makes it (apply removes it before the up stages make it again, whose
// DHCP servers are seeded with the leases the record holds, so the dynamic
// guests that stay keep their addresses). An external side differs only
// when its switch does. A deployment's ACL table on a host is written
// whole in one nftables transaction by up's acl stage, so a changed one is
// an update with no gap; one no longer wanted is removed.

// diffRouters adds the routers and external sides to p.
func diffRouters(p *planned, rec *Record, st *topology.State) {
	type want struct {
		kind api.ChangeKind
		name string
		rec  RouterRecord
	}
	wanted := map[hostKey]want{}
	for i := range st.Switches {
		sw := st.Switches[i]
		if sw.External != nil {
			wanted[hostKey{sw.External.Host, sw.External.Table}] = want{api.KindExternal, sw.Name, RouterRecord{External: &sw}}
		}
	}
	for i := range st.Routers {
		r := st.Routers[i]
		wanted[hostKey{r.Host, r.Namespace}] = want{api.KindRouter, r.Name, RouterRecord{Router: &r}}
	}
	for _, h := range rec.hostNames() {
		for key, rr := range rec.Hosts[h].Routers {
			k := hostKey{h, key}
			kind, name := api.KindRouter, ""
			if rr.Router != nil {
				name = rr.Router.Name
			} else if rr.External != nil {
				kind, name = api.KindExternal, rr.External.Name
			}
			w, ok := wanted[k]
			var diffs []string
			switch {
			case !ok:
			case rr.Router != nil && w.rec.Router != nil:
				diffs = diffValues(*rr.Router, *w.rec.Router)
			case rr.External != nil && w.rec.External != nil:
				diffs = diffValues(*rr.External, *w.rec.External)
			default:
				diffs = []string{"kind changed"}
			}
			switch {
			case !ok:
				p.removeRouters[k] = true
				p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: kind, Name: name, Host: h, Op: api.OpRemove})
			case len(diffs) > 0:
				p.removeRouters[k] = true
				p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: w.kind, Name: w.name, Host: h, Op: api.OpRemake, Why: strings.Join(diffs, "; ")})
			default:
				p.plan.Unchanged = append(p.plan.Unchanged, api.PlanObject{Kind: w.kind, Name: w.name, Host: h})
			}
		}
	}
	for k, w := range wanted {
		if recorded(rec, k.host, k.name, false) {
			continue
		}
		p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: w.kind, Name: w.name, Host: k.host, Op: api.OpAdd})
	}
}

// diffACLs adds the ACL tables to p. The ports a table guards follow the
// guests (every up writes them afresh), so they are not compared: an ACL
// change is one of rules, apply_deny_all or port names.
func diffACLs(p *planned, rec *Record, st *topology.State) {
	wanted := aclTableSpecs(st)
	for _, h := range rec.hostNames() {
		for name, tr := range rec.Hosts[h].ACLTables {
			k := hostKey{h, name}
			spec, ok := wanted[h]
			switch {
			case !ok || spec.Name != name:
				p.removeACLs[k] = true
				p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: api.KindACL, Name: name, Host: h, Op: api.OpRemove})
			case tr.Spec == nil:
				p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: api.KindACL, Name: name, Host: h, Op: api.OpUpdate, Why: "recorded without its rules: rewritten"})
			default:
				if diffs := diffValues(withoutPorts(*tr.Spec), withoutPorts(spec)); len(diffs) > 0 {
					p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: api.KindACL, Name: name, Host: h, Op: api.OpUpdate, Why: strings.Join(diffs, "; ")})
				} else {
					p.plan.Unchanged = append(p.plan.Unchanged, api.PlanObject{Kind: api.KindACL, Name: name, Host: h})
				}
			}
		}
	}
	for h, spec := range wanted {
		if !recorded(rec, h, spec.Name, true) {
			p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: api.KindACL, Name: spec.Name, Host: h, Op: api.OpAdd})
		}
	}
}

// aclTableSpecs are the ACL tables st asks for, by host, as up's acl stage
// writes them: a switch with rules (or any switch, under apply_deny_all)
// on every host that has its bridge.
func aclTableSpecs(st *topology.State) map[string]ACLTableSpec {
	if st.ACL == nil {
		return nil
	}
	onHost := map[string]map[string]bool{}
	add := func(h, sw string) {
		if onHost[h] == nil {
			onHost[h] = map[string]bool{}
		}
		onHost[h][sw] = true
	}
	ports := map[hostKey][]string{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			add(g.Host, ifc.Switch)
			ports[hostKey{g.Host, ifc.Switch}] = append(ports[hostKey{g.Host, ifc.Switch}], ifc.HostName)
		}
	}
	for _, r := range st.Routers {
		for _, p := range r.Ports {
			add(r.Host, p.Switch)
		}
	}
	for _, sw := range st.Switches {
		if sw.External != nil {
			add(sw.External.Host, sw.Name)
		}
	}
	out := map[string]ACLTableSpec{}
	for h, sws := range onHost {
		names := make([]string, 0, len(sws))
		for sw := range sws {
			names = append(names, sw)
		}
		sort.Strings(names)
		spec := ACLTableSpec{Name: topology.ACLTableName(st.Deployment)}
		for _, sw := range names {
			rules := st.ACL.Switches[sw]
			if len(rules) == 0 && !st.ACL.DenyAll {
				continue
			}
			s := aclnft.SwitchSpec{Switch: sw, Names: topology.ACLPorts(st, sw), DenyAll: st.ACL.DenyAll, Ports: slices.Sorted(slices.Values(ports[hostKey{h, sw}]))}
			for _, r := range rules {
				s.Rules = append(s.Rules, aclnft.RuleSpec{Direction: r.Direction, Priority: r.Priority, Match: r.Match, Action: r.Action})
			}
			spec.Switches = append(spec.Switches, s)
		}
		if len(spec.Switches) > 0 {
			out[h] = spec
		}
	}
	return out
}

// withoutPorts is spec with no guest ports, for comparing what the rules
// say.
func withoutPorts(spec ACLTableSpec) ACLTableSpec {
	spec.Switches = slices.Clone(spec.Switches)
	for i := range spec.Switches {
		spec.Switches[i].Ports = nil
		if len(spec.Switches[i].Names) == 0 {
			spec.Switches[i].Names = nil
		}
	}
	return spec
}

// routerSwitches adds to bridges the switches routers and external sides
// need on their host: their bridges stay while a router is on them.
func routerSwitches(st *topology.State, bridges map[hostKey]string) {
	for _, r := range st.Routers {
		for _, p := range r.Ports {
			bridges[hostKey{r.Host, p.Bridge}] = p.Switch
		}
	}
	for _, sw := range st.Switches {
		if sw.External != nil {
			bridges[hostKey{sw.External.Host, sw.Bridge}] = sw.Name
		}
	}
}

func pickRouters(p *planned) map[hostKey]bool { return p.removeRouters }
func pickACLs(p *planned) map[hostKey]bool    { return p.removeACLs }

// recorded reports whether rec holds, on host h, the router (or external
// side) key, or when acl the ACL table key; it changes nothing.
func recorded(rec *Record, h, key string, acl bool) bool {
	hr := rec.Hosts[h]
	if hr == nil {
		return false
	}
	if acl {
		_, ok := hr.ACLTables[key]
		return ok
	}
	_, ok := hr.Routers[key]
	return ok
}

// checkCapabilities refuses, before an up or apply is recorded, routers,
// external switches and ACLs placed on a host whose network cannot have
// them (ErrNoRouters, ErrNoACLs: 422). A host the cluster does not know
// is left to the action, which says so.
func (e *Engine) checkCapabilities(st *topology.State) error {
	hostOf := func(name string) Host {
		h, err := e.opts.Hosts.Host(name)
		if err != nil {
			return nil
		}
		return h
	}
	for _, r := range st.Routers {
		if h := hostOf(r.Host); h != nil {
			if _, err := RoutersOf(h); err != nil {
				return fmt.Errorf("router %s: %w", r.Name, err)
			}
		}
	}
	for _, sw := range st.Switches {
		if sw.External == nil {
			continue
		}
		if h := hostOf(sw.External.Host); h != nil {
			if _, err := RoutersOf(h); err != nil {
				return fmt.Errorf("switch %s is external: %w", sw.Name, err)
			}
		}
	}
	for host := range aclTableSpecs(st) {
		if h := hostOf(host); h != nil {
			if _, err := ACLsOf(h); err != nil {
				return fmt.Errorf("network.acl: %w", err)
			}
		}
	}
	return nil
}
