package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// A plan compares the record of what a deployment has deployed with what
// its kvm-compose.yaml resolves to now. Names of kernel objects derive from
// the deployment and the object's name, so an object is the same one when
// its key (host and name) is: what differs inside decides between keeping
// it, changing it in place and re-making it.

// hostKey names an object on one host.
type hostKey struct{ host, name string }

// planned is a plan with what apply needs to carry it out.
type planned struct {
	plan  api.Plan
	state *topology.State
	// remove are the record's objects apply removes first: removed and
	// re-made guests, removed switches (bridges), removed and re-made
	// tunnels. The up that follows makes every missing one.
	removeGuests, removeBridges, removeTunnels map[hostKey]bool
	// removeRouters are the routers and external sides (by record key)
	// removed or re-made; removeACLs the ACL tables no longer wanted.
	// Changed ACL tables are rewritten in place by up's acl stage.
	removeRouters, removeACLs map[hostKey]bool
	// impair are guests whose only difference is their links'
	// impairments: the new description, changed in place.
	impair []topology.Guest
}

// Plan answers what apply would change (GET /api/deployments/{name}/plan):
// it resolves kvm-compose.yaml afresh, writing nothing, and compares it with
// the record. A deployment with nothing recorded is ErrConflict; a YAML
// that does not validate is a *topology.ValidationError.
func (e *Engine) Plan(ctx context.Context, d api.Deployment) (api.Plan, error) {
	p, err := e.makePlan(ctx, d)
	if err != nil {
		return api.Plan{}, err
	}
	return p.plan, nil
}

func (e *Engine) makePlan(ctx context.Context, d api.Deployment) (*planned, error) {
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	if rec.empty() {
		return nil, fmt.Errorf("%w: deployment %s has nothing deployed: run up first", ErrConflict, d.Name)
	}
	st, err := topology.Generate(e.topologyOptions(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %v: the project folder no longer holds kvm-compose.yaml", ErrConflict, err)
	}
	if err != nil {
		return nil, err
	}
	p := diffPlan(&rec, st, e.hostIPs(st), e.opts.Impairer != nil)
	return p, nil
}

// diffPlan is the plan that brings rec to st. ips are the hosts' addresses
// (for the tunnels' peers); canImpair says whether impairments can change
// in place (Options.Impairer), else a guest whose impairments changed is
// re-made.
func diffPlan(rec *Record, st *topology.State, ips map[string]string, canImpair bool) *planned {
	p := &planned{
		plan:          api.Plan{Deployment: st.Deployment, Changes: []api.PlanChange{}, Unchanged: []api.PlanObject{}},
		state:         st,
		removeGuests:  map[hostKey]bool{},
		removeBridges: map[hostKey]bool{},
		removeTunnels: map[hostKey]bool{},
		removeRouters: map[hostKey]bool{},
		removeACLs:    map[hostKey]bool{},
	}
	change := func(kind api.ChangeKind, k hostKey, op api.ChangeOp, why string) {
		p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: kind, Name: k.name, Host: k.host, Op: op, Why: why})
	}
	keep := func(kind api.ChangeKind, k hostKey) {
		p.plan.Unchanged = append(p.plan.Unchanged, api.PlanObject{Kind: kind, Name: k.name, Host: k.host})
	}

	// Guests, by name: a guest that moves host is re-made.
	recorded := map[string]hostKey{}
	for _, h := range rec.hostNames() {
		for name := range rec.Hosts[h].Guests {
			recorded[name] = hostKey{h, name}
		}
	}
	wanted := map[string]bool{}
	for i := range st.Guests {
		g := &st.Guests[i]
		wanted[g.Name] = true
		k, ok := recorded[g.Name]
		if !ok {
			change(api.KindGuest, hostKey{g.Host, g.Name}, api.OpAdd, "")
			continue
		}
		old := rec.Hosts[k.host].Guests[g.Name]
		switch {
		case old.Pending:
			p.removeGuests[k] = true
			change(api.KindGuest, hostKey{g.Host, g.Name}, api.OpRemake, "its making never finished")
		case k.host != g.Host:
			p.removeGuests[k] = true
			change(api.KindGuest, hostKey{g.Host, g.Name}, api.OpRemake, fmt.Sprintf("host %s → %s", k.host, g.Host))
		default:
			diffs := diffValues(old.Guest, *g)
			var runtime []string
			if canImpair {
				runtime = runtimeDiffs(old, g)
			}
			if len(diffs) == 0 && len(runtime) == 0 {
				keep(api.KindGuest, k)
				continue
			}
			if canImpair && len(diffValues(withoutNetem(old.Guest), withoutNetem(*g))) == 0 {
				p.impair = append(p.impair, *g)
				change(api.KindGuest, k, api.OpImpair, strings.Join(append(diffs, runtime...), "; "))
				continue
			}
			p.removeGuests[k] = true
			change(api.KindGuest, k, api.OpRemake, strings.Join(diffs, "; "))
		}
	}
	for name, k := range recorded {
		if !wanted[name] {
			p.removeGuests[k] = true
			change(api.KindGuest, k, api.OpRemove, "")
		}
	}

	// Switches: a bridge on every host that has a guest on the switch. A
	// bridge is plain layer 2, so it is kept or removed, never re-made.
	bridgeSwitch := map[hostKey]string{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			bridgeSwitch[hostKey{g.Host, ifc.Bridge}] = ifc.Switch
		}
	}
	routerSwitches(st, bridgeSwitch)
	for _, h := range rec.hostNames() {
		for bridge, br := range rec.Hosts[h].Bridges {
			k := hostKey{h, bridge}
			if _, ok := bridgeSwitch[k]; ok {
				keep(api.KindSwitch, hostKey{h, br.Switch})
				continue
			}
			p.removeBridges[k] = true
			change(api.KindSwitch, hostKey{h, br.Switch}, api.OpRemove, "")
		}
	}
	for k, sw := range bridgeSwitch {
		if _, ok := rec.Hosts[k.host]; ok {
			if _, ok := rec.Hosts[k.host].Bridges[k.name]; ok {
				continue
			}
		}
		change(api.KindSwitch, hostKey{k.host, sw}, api.OpAdd, "")
	}

	// Tunnels of switches spanning hosts: re-made when their peers change.
	wantTunnels := map[hostKey][]string{}
	tunnelSwitch := map[hostKey]string{}
	for sw, hosts := range spanningSwitches(st) {
		for _, h := range hosts {
			var peers []string
			for _, other := range hosts {
				if other != h {
					peers = append(peers, ips[other])
				}
			}
			k := hostKey{h, topology.TunnelName(st.Deployment, sw)}
			wantTunnels[k], tunnelSwitch[k] = peers, sw
		}
	}
	for _, h := range rec.hostNames() {
		for link, t := range rec.Hosts[h].Tunnels {
			k := hostKey{h, link}
			peers, ok := wantTunnels[k]
			switch {
			case !ok:
				p.removeTunnels[k] = true
				change(api.KindTunnel, k, api.OpRemove, "")
			case !sameSet(peers, t.Peers):
				p.removeTunnels[k] = true
				change(api.KindTunnel, k, api.OpRemake, fmt.Sprintf("peers %v → %v", t.Peers, peers))
			default:
				keep(api.KindTunnel, k)
			}
		}
	}
	for k := range wantTunnels {
		if _, ok := rec.Hosts[k.host]; ok {
			if _, ok := rec.Hosts[k.host].Tunnels[k.name]; ok {
				continue
			}
		}
		change(api.KindTunnel, k, api.OpAdd, "")
	}
	diffRouters(p, rec, st)
	diffACLs(p, rec, st)
	sortPlan(&p.plan)
	return p
}

// opOrder is the order changes are listed in: what goes, then what changes,
// then what comes.
var opOrder = map[api.ChangeOp]int{api.OpRemove: 0, api.OpRemake: 1, api.OpUpdate: 2, api.OpImpair: 3, api.OpAdd: 4}

// kindOrder lists the network (switches, tunnels, routers, external sides,
// ACLs) before the guests on it.
var kindOrder = map[api.ChangeKind]int{api.KindSwitch: 0, api.KindTunnel: 1, api.KindExternal: 2, api.KindRouter: 3, api.KindACL: 4, api.KindGuest: 5}

func sortPlan(p *api.Plan) {
	sort.Slice(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if opOrder[a.Op] != opOrder[b.Op] {
			return opOrder[a.Op] < opOrder[b.Op]
		}
		if kindOrder[a.Kind] != kindOrder[b.Kind] {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Name < b.Name || a.Name == b.Name && a.Host < b.Host
	})
	sort.Slice(p.Unchanged, func(i, j int) bool {
		a, b := p.Unchanged[i], p.Unchanged[j]
		if kindOrder[a.Kind] != kindOrder[b.Kind] {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Name < b.Name || a.Name == b.Name && a.Host < b.Host
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// withoutNetem is g with no impairment on any interface.
func withoutNetem(g topology.Guest) topology.Guest {
	g.Interfaces = slices.Clone(g.Interfaces)
	for i := range g.Interfaces {
		g.Interfaces[i].Netem = nil
	}
	return g
}

// diffValues lists how b differs from a, field by field in their JSON
// spelling: "interfaces[0].address 10.0.0.3/24 → 10.0.0.9/24".
func diffValues(a, b any) []string {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	var va, vb any
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	json.Unmarshal(ja, &va)
	json.Unmarshal(jb, &vb)
	var out []string
	diffJSON("", va, vb, &out)
	return out
}

func diffJSON(path string, a, b any, out *[]string) {
	if reflect.DeepEqual(a, b) {
		return
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			diffJSON(join(path, k), x[k], y[k], out)
		}
		return
	case []any:
		y, ok := b.([]any)
		if !ok {
			break
		}
		for i := 0; i < max(len(x), len(y)); i++ {
			var ea, eb any
			if i < len(x) {
				ea = x[i]
			}
			if i < len(y) {
				eb = y[i]
			}
			diffJSON(fmt.Sprintf("%s[%d]", path, i), ea, eb, out)
		}
		return
	}
	aObj, bObj := named(a), named(b)
	switch {
	case a == nil && bObj:
		*out = append(*out, path+" added"+brief(b))
	case b == nil && aObj:
		*out = append(*out, path+" removed"+brief(a))
	default:
		*out = append(*out, fmt.Sprintf("%s %s → %s", path, show(a), show(b)))
	}
}

// named reports whether v is an object with a name (an interface).
func named(v any) bool {
	m, ok := v.(map[string]any)
	return ok && m["name"] != nil
}

// brief names an added or removed object by its name and switch, when it
// has them: " (eth1 on sw1)".
func brief(v any) string {
	m, _ := v.(map[string]any)
	name, _ := m["name"].(string)
	sw, _ := m["switch"].(string)
	switch {
	case name != "" && sw != "":
		return " (" + name + " on " + sw + ")"
	case name != "":
		return " (" + name + ")"
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// show writes a JSON value short: strings bare, nothing as "none".
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case string:
		if x == "" {
			return `""`
		}
		return x
	}
	data, _ := json.Marshal(v)
	return string(data)
}
