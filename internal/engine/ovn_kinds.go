package engine

import (
	"context"
	"reflect"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/topology"
)

// With the ovn backend the network is OVN's logical network: switches
// (ovn_switch.go), routers (ovn_router.go) and ACLs (ovn_acl.go) are rows
// of the northbound database, written whole from the state by up and
// deleted by name by down. They are recorded under the main host, whose
// northbound database holds them; guests are the same kind as with the
// bridge backend, their host ends bound to logical ports by the host's
// network (guest.PortBinder).

// ovnKinds is the ovn backend's kinds in the order up makes them.
func ovnKinds() []kind {
	return []kind{ovnSwitchKind, ovnRouterKind, ovnACLKind, guestKind{}, namesKind{}}
}

// OVNNetwork is the capability of a host's network that runs the ovn
// backend: its OVN northbound database.
type OVNNetwork interface {
	Logical() *ovn.Network
}

// The ovn backend's host network takes a destroyed guest's ports off its
// integration bridge.
var _ PortUnbinder = (*ovn.Host)(nil)

// ErrNoOVN: the ovn backend drives a host whose network has no OVN.
var ErrNoOVN = api.Categorized(api.ErrInvalid, "the host's network has no OVN (start the server with TESTBEDOS_NETWORK=ovn)")

// checkOVNHosts refuses, before an up or apply on the ovn backend, a main
// whose network has no OVN. Guests on clients are bound on the clients'
// own chassis, which a client joined to an ovn main sets up at start.
func checkOVNHosts(st *topology.State, hostOf func(string) Host) error {
	if h := hostOf(mainHost(st)); h != nil {
		if _, err := ovnOf(h); err != nil {
			return err
		}
	}
	return nil
}

// ovnOf returns host h's OVN, or an error wrapping ErrNoOVN.
func ovnOf(h Host) (*ovn.Network, error) {
	c, err := capability[OVNNetwork](h, ErrNoOVN)
	if err != nil {
		return nil, err
	}
	return c.Logical(), nil
}

// OVNRecord is one logical object (a switch, a router, a switch's ACLs)
// as it was written: Object is its name in kvm-compose.yaml, Spec what
// was written, which plan compares and restore writes again.
type OVNRecord[S any] struct {
	Object string `json:"object"`
	Spec   S      `json:"spec"`
}

// ovnKind is one kind of logical object: how it is keyed, recorded,
// written, removed and found.
type ovnKind[S any] struct {
	name    string // the stage, and the plan's word
	noun    string // counted in stage lines
	change  api.ChangeKind
	records func(h *HostRecord) *map[string]OVNRecord[S]
	// wanted is what st asks for: key (the OVN name) → object.
	wanted func(st *topology.State, chassis string) map[string]OVNRecord[S]
	put    func(ctx context.Context, host Host, n *ovn.Network, dep, key string, spec S) error
	del    func(ctx context.Context, host Host, n *ovn.Network, key string, spec S) error
	has    func(n *ovn.Network, key string, spec S) bool
	// keep, when set, trims from a removal what another deployment still
	// uses (a shared provider network).
	keep func(ctx context.Context, env removeEnv, host string, spec S) (S, error)
}

func (k *ovnKind[S]) stage() string { return k.name }

func (k *ovnKind[S]) held(h *HostRecord) []string { return sortedKeys(*k.records(h)) }

func (k *ovnKind[S]) forget(h *HostRecord, key string) { delete(*k.records(h), key) }

func (k *ovnKind[S]) removeLimit(*Options) int { return 0 }

func (k *ovnKind[S]) removal(env removeEnv, h *HostRecord, key string) removal {
	obj := (*k.records(h))[key]
	return removal{
		what: k.noun + " " + obj.Object,
		noun: k.noun,
		run: func(ctx context.Context, host Host) (string, error) {
			n, err := ovnOf(host)
			if err != nil {
				return "", err
			}
			spec := obj.Spec
			if k.keep != nil {
				if spec, err = k.keep(ctx, env, host.Name(), spec); err != nil {
					return "", err
				}
			}
			return "OVN " + key + " removed", k.del(ctx, host, n, key, spec)
		},
	}
}

func (k *ovnKind[S]) missing(_ context.Context, c checkEnv, h *HostRecord) ([]gap, error) {
	recs := *k.records(h)
	if len(recs) == 0 {
		return nil, nil
	}
	n, err := ovnOf(c.host)
	if err != nil {
		return nil, err
	}
	var out []gap
	for _, key := range sortedKeys(recs) {
		if !k.has(n, key, recs[key].Spec) {
			out = append(out, gap{kind: k.change, name: recs[key].Object, what: "OVN " + k.noun + " " + key})
		}
	}
	return out, nil
}

// diff keeps an object whose spec is what the state asks for, rewrites
// (update) one that differs, removes one no longer wanted and adds the
// new ones. The chassis of gateway ports is not known here: specs are
// compared without it.
func (k *ovnKind[S]) diff(p *planned, rec *Record, st *topology.State) {
	main := mainHost(st)
	wanted := k.wanted(st, "")
	var recs map[string]OVNRecord[S]
	if hr := rec.Hosts[main]; hr != nil {
		recs = *k.records(hr)
	}
	for _, key := range sortedKeys(recs) {
		r := recs[key]
		hk := hostKey{main, r.Object}
		w, ok := wanted[key]
		switch {
		case !ok:
			p.remove(k, hostKey{main, key})
			p.change(k.change, hk, api.OpRemove, "")
		case !reflect.DeepEqual(withoutChassis(r.Spec), w.Spec):
			p.change(k.change, hk, api.OpUpdate, "rewritten in OVN")
		default:
			p.keep(k.change, hk)
		}
	}
	for _, key := range sortedKeys(wanted) {
		if _, ok := recs[key]; !ok {
			p.change(k.change, hostKey{main, wanted[key].Object}, api.OpAdd, "")
		}
	}
}

// withoutChassis is spec with no gateway chassis named, for comparing.
func withoutChassis[S any](spec S) S {
	if rs, ok := any(spec).(ovn.RouterSpec); ok {
		ports := make([]ovn.RouterPortSpec, len(rs.Ports))
		copy(ports, rs.Ports)
		for i := range ports {
			if ports[i].GatewayChassis != "" {
				ports[i].GatewayChassis = "-"
			}
		}
		rs.Ports = ports
		return any(rs).(S)
	}
	return spec
}

// mainHost is the state's main host, where the northbound database runs.
func mainHost(st *topology.State) string {
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

// upPart is nil when the state asks for none of the kind (no routers, no
// ACLs): up then has no stage for it, as with the bridge backend.
func (k *ovnKind[S]) upPart(u *upRun) upPart {
	if len(k.wanted(u.st, "")) == 0 {
		return nil
	}
	return &ovnUp[S]{k: k, u: u}
}

// ovnUp writes one kind's logical objects in an up: each is recorded,
// then written whole unless OVN already has it as recorded.
type ovnUp[S any] struct {
	k      *ovnKind[S]
	u      *upRun
	host   Host
	n      *ovn.Network
	wanted map[string]OVNRecord[S]
}

func (o *ovnUp[S]) plan(ctx context.Context) (string, error) {
	host, err := o.u.e.opts.Hosts.Host(mainHost(o.u.st))
	if err != nil {
		return "", err
	}
	if o.n, err = ovnOf(host); err != nil {
		return "", err
	}
	o.host = host
	o.wanted = o.k.wanted(o.u.st, o.n.Chassis())
	return count(len(o.wanted), o.k.noun), nil
}

func (o *ovnUp[S]) items() []item {
	u, k := o.u, o.k
	var items []item
	for _, key := range sortedKeys(o.wanted) {
		w := o.wanted[key]
		items = append(items, func(ctx context.Context) error {
			host := o.host.Name()
			var prev OVNRecord[S]
			var recorded bool
			u.led.edit(func(r *Record) {
				recs := k.records(r.host(host))
				if *recs == nil {
					*recs = map[string]OVNRecord[S]{}
				}
				prev, recorded = (*recs)[key]
				(*recs)[key] = w
			})
			if err := u.led.save(ctx); err != nil {
				return err
			}
			what := k.noun + " " + w.Object
			if recorded && k.has(o.n, key, w.Spec) && reflect.DeepEqual(prev.Spec, w.Spec) {
				u.log.Printf("    %s: OVN %s already there", what, key)
				return nil
			}
			if !recorded {
				u.made.add(func(ctx context.Context) error {
					spec, err := o.keep(ctx, w.Spec)
					if err == nil {
						err = k.del(ctx, o.host, o.n, key, spec)
					}
					if err != nil {
						return objectError(what, err)
					}
					u.led.edit(func(r *Record) { delete(*k.records(r.host(host)), key) })
					return nil
				})
			}
			if err := k.put(ctx, o.host, o.n, u.d.Name, key, w.Spec); err != nil {
				return objectError(what, err)
			}
			u.log.Printf("    %s: OVN %s %s", what, key, ifThen(recorded, "rewritten", "created"))
			return nil
		})
	}
	return items
}

// keep trims from the undo of what this up made what another deployment
// uses.
func (o *ovnUp[S]) keep(ctx context.Context, spec S) (S, error) {
	if o.k.keep == nil {
		return spec, nil
	}
	env := removeEnv{dep: o.u.d.Name, log: o.u.log, otherHolder: func(ctx context.Context, host string, holds func(*HostRecord) bool) (string, error) {
		return o.u.e.sharedHolder(ctx, o.u.d.Name, host, holds)
	}}
	return o.k.keep(ctx, env, o.host.Name(), spec)
}

// forgetUnstarted has nothing to do: each object is recorded by its own
// item, when it starts.
func (o *ovnUp[S]) forgetUnstarted(*Record) {}

// lsName is the logical switch of switch sw of deployment dep: named like
// its bridge with the bridge backend, so it carries the deployment's
// prefix; a switch on a provider network (whose bridge is the network's,
// shared) like the bridge it would have of its own.
func lsName(dep string, sw topology.Switch) string {
	if sw.External != nil && sw.External.Provider != "" {
		return topology.BridgeName(dep, sw.Name)
	}
	return sw.Bridge
}
