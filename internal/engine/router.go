package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// Routers and external switches run on the main host (the state names it
// as Router.Host and ExternalSide.Host; set_gateway_chassis is ignored). The
// "routers" stage comes after the bridges and tunnels and before the
// guests, so guests with ip: dynamic find their DHCP server running. DHCP
// servers are goroutines of the daemon: Resume starts them again when
// the daemon restarts with deployments up.

// Routers is the capability of running routers and external switches'
// host sides.
type Routers interface {
	// EnsureRouter makes the router if missing (reporting whether it did)
	// and makes sure its DHCP servers run.
	EnsureRouter(ctx context.Context, r topology.Router) (created bool, err error)
	// DeleteRouter stops its DHCP servers and removes it; a missing one is
	// fine.
	DeleteRouter(ctx context.Context, r topology.Router) error
	// ServeDHCP starts the DHCP servers of an existing router again,
	// handing out the leases given (MAC → address) as before.
	ServeDHCP(ctx context.Context, r topology.Router, leases map[string]string) error
	// EnsureExternal and DeleteExternal make and remove the host's side of
	// an external switch.
	EnsureExternal(ctx context.Context, sw topology.Switch) (created bool, err error)
	DeleteExternal(ctx context.Context, sw topology.Switch) error
	// Lease takes a DHCP lease on ifname inside the namespace at nsPath and
	// configures it there; it returns the address (CIDR) and the router.
	Lease(ctx context.Context, nsPath, ifname string) (addr, router string, err error)
	// RouterMissing lists what of r is not there (its namespace, a port,
	// a DHCP server); empty when it is whole.
	RouterMissing(ctx context.Context, r topology.Router) ([]string, error)
	// HasExternal reports whether the host's side of an external switch
	// is there.
	HasExternal(ctx context.Context, sw topology.Switch) (bool, error)
}

// ErrNoRouters: a router is placed on a host whose network cannot run one.
var ErrNoRouters = api.Categorized(api.ErrInvalid, "the host's network cannot run routers")

// RoutersOf returns the routers of host h's network, or an error wrapping
// ErrNoRouters.
func RoutersOf(h Host) (Routers, error) { return capability[Routers](h, ErrNoRouters) }

// RouterRecord is a router, or the host's side of an external switch, on a
// host: exactly one of Router and External is set. It is written before
// the object is made.
type RouterRecord struct {
	Router   *topology.Router `json:"router,omitempty"`
	External *topology.Switch `json:"external,omitempty"`
	// Made: the deployment created it, so down removes it.
	Made bool `json:"made"`
}

// placedRouter is one router or external side of the state on its host,
// and what this run knows of it.
type placedRouter struct {
	key  string // the record's key: the namespace, or the external table
	host Host
	net  Routers
	rec  RouterRecord
	// recorded: in the record before this run; started: its item ran.
	recorded, started bool
}

// describe names a router or external side in the log and in errors.
func (rec RouterRecord) describe() string {
	if rec.Router != nil {
		return "router " + rec.Router.Name
	}
	return "switch " + rec.External.Name + " (external)"
}

// routerKind is the routers and the host's sides of external switches.
type routerKind struct{}

var _ kind = routerKind{}

func (routerKind) stage() string { return "routers" }

func (routerKind) held(h *HostRecord) []string { return sortedKeys(h.Routers) }

func (routerKind) forget(h *HostRecord, key string) { delete(h.Routers, key) }

func (routerKind) removeLimit(*Options) int { return 0 }

func (routerKind) removal(env removeEnv, h *HostRecord, key string) removal {
	rr := h.Routers[key]
	return removal{
		what: rr.describe(),
		noun: ifThen(rr.Router != nil, "router", "external switch"),
		run: func(ctx context.Context, host Host) (string, error) {
			if rr.Router == nil && sharedSwitch(rr.External) {
				// A provider network's host side: the last deployment on
				// it removes it.
				how, kept, err := env.keptShared(ctx, host.Name(), func(h *HostRecord) bool { _, ok := h.Routers[key]; return ok })
				if err != nil || kept {
					return how, err
				}
			} else if !rr.Made {
				return "kept (it was there before)", nil
			}
			net, err := RoutersOf(host)
			if err != nil {
				return "", err
			}
			return "removed", deleteRouter(ctx, net, rr)
		},
	}
}

func (routerKind) missing(ctx context.Context, c checkEnv, h *HostRecord) ([]gap, error) {
	if len(h.Routers) == 0 {
		return nil, nil
	}
	net, err := RoutersOf(c.host)
	if err != nil {
		return nil, err
	}
	var out []gap
	for _, key := range sortedKeys(h.Routers) {
		rr := h.Routers[key]
		switch {
		case rr.Router != nil:
			gone, err := net.RouterMissing(ctx, *rr.Router)
			if err != nil {
				return nil, objectError(rr.describe(), err)
			}
			for _, g := range gone {
				out = append(out, gap{kind: api.KindRouter, name: rr.Router.Name, what: "router " + rr.Router.Name + ": " + g})
			}
		case rr.External != nil:
			ok, err := net.HasExternal(ctx, *rr.External)
			if err != nil {
				return nil, objectError(rr.describe(), err)
			}
			if !ok {
				out = append(out, gap{kind: api.KindExternal, name: rr.External.Name, what: "switch " + rr.External.Name + " (external)"})
			}
		}
	}
	return out, nil
}

func (routerKind) upPart(u *upRun) upPart {
	if len(u.st.Routers) == 0 && !hasExternal(u.st) {
		return nil
	}
	return &routerUp{u: u}
}

func hasExternal(st *topology.State) bool {
	for _, sw := range st.Switches {
		if sw.External != nil {
			return true
		}
	}
	return false
}

// routerUp makes the routers and external sides of one up.
type routerUp struct {
	u       *upRun
	routers []*placedRouter
}

// plan records every router and external side before any is made.
func (ru *routerUp) plan(ctx context.Context) (string, error) {
	u := ru.u
	if err := u.e.checkExternalOverlap(ctx, u.d.Name, u.st); err != nil {
		return "", err
	}
	place := func(hostName, key string, rec RouterRecord) error {
		h, err := u.e.opts.Hosts.Host(hostName)
		if err != nil {
			return err
		}
		net, err := RoutersOf(h)
		if err != nil {
			return err
		}
		ru.routers = append(ru.routers, &placedRouter{key: key, host: h, net: net, rec: rec})
		return nil
	}
	for _, sw := range u.st.Switches {
		if sw.External != nil {
			if err := place(sw.External.Host, sw.External.Table, RouterRecord{External: &sw}); err != nil {
				return "", objectError("switch "+sw.Name, err)
			}
		}
	}
	for _, r := range u.st.Routers {
		if err := place(r.Host, r.Namespace, RouterRecord{Router: &r}); err != nil {
			return "", objectError("router "+r.Name, err)
		}
	}
	u.led.edit(func(r *Record) {
		for _, p := range ru.routers {
			h := r.host(p.host.Name())
			_, p.recorded = h.Routers[p.key]
			rec := p.rec
			// Named from the deployment: ours even if it is there.
			rec.Made = true
			h.Routers[p.key] = rec
		}
	})
	return fmt.Sprintf("%s, %s", count(len(u.st.Routers), "router"), count(len(ru.routers)-len(u.st.Routers), "external switch")), u.led.save(ctx)
}

func (ru *routerUp) items() []item {
	u := ru.u
	items := make([]item, len(ru.routers))
	for i, p := range ru.routers {
		items[i] = func(ctx context.Context) error {
			host := p.host.Name()
			p.started = true
			var created bool
			var err error
			if p.rec.Router != nil {
				created, err = p.net.EnsureRouter(ctx, *p.rec.Router)
				if err == nil && len(p.rec.Router.DHCP) > 0 {
					// A router made again (apply re-made it, a reboot
					// removed it) hands the dynamic guests that stay the
					// addresses they hold.
					var leases map[string]string
					u.led.view(func(r *Record) { leases = recordLeases(r) })
					if len(leases) > 0 {
						err = p.net.ServeDHCP(ctx, *p.rec.Router, leases)
						if err != nil && created {
							err = errors.Join(err, p.net.DeleteRouter(context.WithoutCancel(ctx), *p.rec.Router))
							created = false
						}
					}
				}
			} else {
				created, err = p.net.EnsureExternal(ctx, *p.rec.External)
			}
			// A provider network's host side that was there is another
			// deployment's too: a failure never removes it.
			if created || err != nil && !p.recorded && !sharedSwitch(p.rec.External) {
				u.made.add(func(ctx context.Context) error {
					if err := deleteRouter(ctx, p.net, p.rec); err != nil {
						return objectError(p.rec.describe(), err)
					}
					u.led.edit(func(r *Record) { delete(r.host(host).Routers, p.key) })
					return nil
				})
			}
			if err != nil {
				return objectError(p.rec.describe(), err)
			}
			u.log.Printf("    %s: %s%s", p.rec.describe(), ifThen(created, "created", "already there"), describeRouter(p.rec))
			return nil
		}
	}
	return items
}

func (ru *routerUp) forgetUnstarted(r *Record) {
	for _, p := range ru.routers {
		if !p.started && !p.recorded {
			delete(r.host(p.host.Name()).Routers, p.key)
		}
	}
}

func describeRouter(rec RouterRecord) string {
	if rec.Router == nil {
		if p := rec.External.External.Provider; p != "" {
			return ", host side " + rec.External.External.Address + " masqueraded out, shared by every deployment on provider network " + p
		}
		return ", host side " + rec.External.External.Address + " masqueraded out"
	}
	s := ""
	for _, p := range rec.Router.Ports {
		s += fmt.Sprintf(", %s %s on %s", p.Name, p.Address, p.Switch)
	}
	if n := len(rec.Router.DHCP); n > 0 {
		s += fmt.Sprintf(", DHCP on %s", count(n, "switch"))
	}
	return s
}

func deleteRouter(ctx context.Context, net Routers, rec RouterRecord) error {
	if rec.Router != nil {
		return net.DeleteRouter(ctx, *rec.Router)
	}
	return net.DeleteExternal(ctx, *rec.External)
}

// diff re-makes a router (or external side) that differs in anything: a
// router is one object with its ports, routes, NAT and DHCP pools (apply
// removes it before the up stages make it again, whose DHCP servers are
// seeded with the leases the record holds, so the dynamic guests that stay
// keep their addresses). An external side differs only when its switch
// does.
func (routerKind) diff(p *planned, rec *Record, st *topology.State) {
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
		for _, key := range sortedKeys(rec.Hosts[h].Routers) {
			rr := rec.Hosts[h].Routers[key]
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
				p.remove(routerKind{}, k)
				p.change(kind, hostKey{h, name}, api.OpRemove, "")
			case len(diffs) > 0:
				p.remove(routerKind{}, k)
				p.change(w.kind, hostKey{h, w.name}, api.OpRemake, strings.Join(diffs, "; "))
			default:
				p.keep(w.kind, hostKey{h, w.name})
			}
		}
	}
	for k, w := range wanted {
		if hr := rec.Hosts[k.host]; hr != nil {
			if _, ok := hr.Routers[k.name]; ok {
				continue
			}
		}
		p.change(w.kind, hostKey{k.host, w.name}, api.OpAdd, "")
	}
}
