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
	// removals are the record's objects apply removes first, by kind
	// stage and host key: removed and re-made ones. The up that follows
	// makes every missing one.
	removals map[string]map[hostKey]bool
	// impair are guests whose only difference is their links'
	// impairments: the new description, changed in place.
	impair []topology.Guest
	// ips are the hosts' addresses (the tunnels' peers); canImpair says
	// whether impairments change in place (Options.Impairer), else a
	// guest whose impairments changed is re-made.
	ips       map[string]string
	canImpair bool
}

// change adds a change to the plan.
func (p *planned) change(kind api.ChangeKind, k hostKey, op api.ChangeOp, why string) {
	p.plan.Changes = append(p.plan.Changes, api.PlanChange{Kind: kind, Name: k.name, Host: k.host, Op: op, Why: why})
}

// keep adds an object that stays as it is.
func (p *planned) keep(kind api.ChangeKind, k hostKey) {
	p.plan.Unchanged = append(p.plan.Unchanged, api.PlanObject{Kind: kind, Name: k.name, Host: k.host})
}

// remove marks the record's object k of kind kd for removal by apply.
func (p *planned) remove(kd kind, k hostKey) {
	if p.removals[kd.stage()] == nil {
		p.removals[kd.stage()] = map[hostKey]bool{}
	}
	p.removals[kd.stage()][k] = true
}

// removes reports whether apply removes the record's object key of kind
// kd on host.
func (p *planned) removes(kd kind, host, key string) bool {
	return p.removals[kd.stage()][hostKey{host, key}]
}

// repair turns each kept object that gap says is broken into a repair:
// apply's up stages make or mend it.
func (p *planned) repair(host string, gaps []gap) {
	for _, g := range gaps {
		obj := api.PlanObject{Kind: g.kind, Name: g.name, Host: host}
		i := slices.Index(p.plan.Unchanged, obj)
		if i < 0 {
			continue
		}
		p.plan.Unchanged = slices.Delete(p.plan.Unchanged, i, i+1)
		p.change(g.kind, hostKey{host, g.name}, api.OpRepair, g.what)
	}
}

// Plan answers what apply would change (GET /api/deployments/{name}/plan):
// it resolves kvm-compose.yaml afresh, writing nothing, compares it with
// the record, and checks that what the record holds and the YAML keeps is
// whole (a bridge deleted by hand is a repair). A deployment with nothing
// recorded is ErrConflict; a YAML that does not validate is a
// *topology.ValidationError.
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
	p := diffPlan(e.opts.Backend, &rec, st, e.hostIPs(st), e.opts.Impairer != nil)
	err = e.eachGap(ctx, d, &rec, func(host string, gaps []gap) { p.repair(host, gaps) })
	if err != nil {
		return nil, err
	}
	sortPlan(&p.plan)
	return p, nil
}

// diffPlan is the plan that brings rec to st, kind by kind.
func diffPlan(backend string, rec *Record, st *topology.State, ips map[string]string, canImpair bool) *planned {
	p := &planned{
		plan:      api.Plan{Deployment: st.Deployment, Changes: []api.PlanChange{}, Unchanged: []api.PlanObject{}},
		state:     st,
		removals:  map[string]map[hostKey]bool{},
		ips:       ips,
		canImpair: canImpair,
	}
	for _, k := range backendKinds(backend) {
		k.diff(p, rec, st)
	}
	sortPlan(&p.plan)
	p.plan.Timeline = planTimeline(st.Timeline)
	return p
}

// opOrder is the order changes are listed in: what goes, then what changes,
// then what comes.
var opOrder = map[api.ChangeOp]int{api.OpRemove: 0, api.OpRemake: 1, api.OpRepair: 2, api.OpUpdate: 3, api.OpImpair: 4, api.OpAdd: 5}

// kindOrder lists the network (switches, tunnels, routers, external sides,
// ACLs) before the guests on it.
var kindOrder = map[api.ChangeKind]int{api.KindSwitch: 0, api.KindTunnel: 1, api.KindExternal: 2, api.KindRouter: 3, api.KindACL: 4, api.KindGuest: 5, api.KindNames: 6}

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
