package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// A guest is made by its kind's driver on its host, after the network it
// sits on. One that exists in any form without being in the record is
// foreign (another server's, or made by hand): up refuses it. A recorded
// guest that exists is kept with every process in it; when the host end of
// one of its interfaces has left its bridge (the bridge was deleted and made
// again), up puts it back, and when the host end is gone, up makes the guest
// again.

// guestKind is the guests.
type guestKind struct{}

var _ kind = guestKind{}

func (guestKind) stage() string { return "guests" }

func (guestKind) held(h *HostRecord) []string { return sortedKeys(h.Guests) }

func (guestKind) forget(h *HostRecord, key string) { delete(h.Guests, key) }

// removeLimit: destroys mostly wait for the kernel, and the netns driver
// deletes the veths of concurrent ones in one batch, so many at once pay.
func (guestKind) removeLimit(o *Options) int { return o.DestroyConcurrency }

func (guestKind) removal(env removeEnv, h *HostRecord, name string) removal {
	g := h.Guests[name].Guest
	return removal{
		what: "guest " + name,
		noun: "guest",
		run: func(ctx context.Context, host Host) (string, error) {
			drv, err := host.Driver(g.Kind)
			if err != nil {
				return "", err
			}
			dep := guestDeployment(env.dep, host, env.project)
			if err := drv.Destroy(ctx, dep, &g, env.log); err != nil {
				return "", err
			}
			if u, ok := host.Network().(PortUnbinder); ok {
				return "removed", u.UnbindPorts(ctx, g.Interfaces)
			}
			return "removed", nil
		},
	}
}

// PortUnbinder is a host network that binds guests' ports (the ovn
// backend's): UnbindPorts takes the ports of the host ends of ifaces off
// its switch once the guest's destroy has removed the links.
type PortUnbinder interface {
	UnbindPorts(ctx context.Context, ifaces []topology.Interface) error
}

func (guestKind) missing(ctx context.Context, c checkEnv, h *HostRecord) ([]gap, error) {
	var out []gap
	for _, name := range sortedKeys(h.Guests) {
		g := h.Guests[name].Guest
		if h.Guests[name].Stopped {
			continue // stopped on purpose: not missing
		}
		drv, err := c.host.Driver(g.Kind)
		if err != nil {
			return nil, objectError("guest "+g.Name, err)
		}
		ok, err := drv.Exists(ctx, guestDeployment(c.dep, c.host, c.project), &g)
		if err != nil {
			return nil, objectError("guest "+g.Name, err)
		}
		if !ok {
			out = append(out, gap{kind: api.KindGuest, name: g.Name, what: guestObject(&g)})
			continue
		}
		detached, gone, err := interfacesOffBridge(ctx, c.host, &g)
		if err != nil {
			return nil, objectError("guest "+g.Name, err)
		}
		for _, ifc := range gone {
			out = append(out, gap{kind: api.KindGuest, name: g.Name, what: fmt.Sprintf("guest %s: %s has no host end %s", g.Name, ifc.Name, ifc.HostName)})
		}
		for _, ifc := range detached {
			out = append(out, gap{kind: api.KindGuest, name: g.Name, what: fmt.Sprintf("guest %s: %s is not on bridge %s (switch %s)", g.Name, ifc.Name, ifc.Bridge, ifc.Switch)})
		}
	}
	return out, nil
}

// interfacesOffBridge checks where the host ends of g's interfaces are, on
// hosts whose network can tell: those off their bridge, and those gone.
func interfacesOffBridge(ctx context.Context, host Host, g *topology.Guest) (detached, gone []topology.Interface, err error) {
	ports, perr := PortsOf(host)
	if perr != nil {
		return nil, nil, nil
	}
	byBridge := map[string][]topology.Interface{}
	for _, ifc := range g.Interfaces {
		if ifc.HostName != "" && ifc.Bridge != "" {
			byBridge[ifc.Bridge] = append(byBridge[ifc.Bridge], ifc)
		}
	}
	for _, bridge := range sortedKeys(byBridge) {
		ifcs := byBridge[bridge]
		names := make([]string, len(ifcs))
		for i, ifc := range ifcs {
			names[i] = ifc.HostName
		}
		d, gn, err := ports.DetachedPorts(ctx, bridge, names)
		if err != nil {
			return nil, nil, err
		}
		for _, ifc := range ifcs {
			switch {
			case contains(d, ifc.HostName):
				detached = append(detached, ifc)
			case contains(gn, ifc.HostName):
				gone = append(gone, ifc)
			}
		}
	}
	return detached, gone, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// diff keeps a guest that is as the record has it, changes in place one
// whose only difference is its impairments (when the engine can), and
// re-makes any other difference: a guest that moves host, one whose making
// never finished, one whose description changed.
func (guestKind) diff(p *planned, rec *Record, st *topology.State) {
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
			p.change(api.KindGuest, hostKey{g.Host, g.Name}, api.OpAdd, "")
			continue
		}
		old := rec.Hosts[k.host].Guests[g.Name]
		switch {
		case old.Pending:
			p.remove(guestKind{}, k)
			p.change(api.KindGuest, hostKey{g.Host, g.Name}, api.OpRemake, "its making never finished")
		case k.host != g.Host:
			p.remove(guestKind{}, k)
			p.change(api.KindGuest, hostKey{g.Host, g.Name}, api.OpRemake, fmt.Sprintf("host %s → %s", k.host, g.Host))
		default:
			diffs := diffValues(old.Guest, *g)
			var runtime []string
			if p.canImpair {
				runtime = runtimeDiffs(old, g)
			}
			if len(diffs) == 0 && len(runtime) == 0 {
				p.keep(api.KindGuest, k)
				continue
			}
			if p.canImpair && len(diffValues(withoutNetem(old.Guest), withoutNetem(*g))) == 0 {
				p.impair = append(p.impair, *g)
				p.change(api.KindGuest, k, api.OpImpair, strings.Join(append(diffs, runtime...), "; "))
				continue
			}
			p.remove(guestKind{}, k)
			p.change(api.KindGuest, k, api.OpRemake, strings.Join(diffs, "; "))
		}
	}
	for name, k := range recorded {
		if !wanted[name] {
			p.remove(guestKind{}, k)
			p.change(api.KindGuest, k, api.OpRemove, "")
		}
	}
}

func (guestKind) upPart(u *upRun) upPart { return &guestUp{u: u} }

// guestUp makes the guests of one up.
type guestUp struct{ u *upRun }

// plan decides for every guest what this up does with it, and records the
// guests it will make before making any. A guest that exists in any form
// but is not in the record was not made by this deployment: up refuses to
// touch it.
func (gu *guestUp) plan(ctx context.Context) (string, error) {
	u := gu.u
	err := forEach(ctx, u.e.opts.Concurrency, len(u.guests), true, func(ctx context.Context, i int) error {
		pg := u.guests[i]
		found, err := guest.Find(ctx, pg.drv, pg.dep, pg.g)
		if err != nil {
			return objectError("guest "+pg.g.Name, err)
		}
		u.led.view(func(r *Record) {
			var gr GuestRecord
			gr, pg.recorded = r.host(pg.host.Name()).Guests[pg.g.Name]
			pg.stopped = gr.Stopped
		})
		pg.found, pg.exists = found, found.Complete
		if !pg.exists || !pg.recorded || u.opts.Provision {
			return nil
		}
		detached, gone, err := interfacesOffBridge(ctx, pg.host, pg.g)
		if err != nil {
			return objectError("guest "+pg.g.Name, err)
		}
		pg.repair = detached
		if len(gone) > 0 {
			pg.remake = fmt.Sprintf("the host end %s of its %s is gone", gone[0].HostName, gone[0].Name)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	var foreign []string
	for _, pg := range u.guests {
		// What another made is never adopted, even in a recorded guest's
		// place; what carries no mark is ours only if recorded.
		f := pg.found
		if f.Presence == guest.Foreign || (f.Presence != guest.Absent || pg.exists) && !pg.recorded {
			what := f.What
			if what == "" {
				what = guestObject(pg.g)
			}
			foreign = append(foreign, fmt.Sprintf("%s (%s)", pg.g.Name, what))
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return "", fmt.Errorf("%w: %s already exist but deployment %s did not make them (another server's, or made by hand); remove them or rename the guests",
			ErrConflict, strings.Join(foreign, ", "), u.d.Name)
	}
	u.led.edit(func(r *Record) {
		for _, pg := range u.guests {
			if !pg.recorded {
				r.host(pg.host.Name()).Guests[pg.g.Name] = GuestRecord{Guest: *pg.g, Pending: true}
			}
		}
	})
	return count(len(u.guests), "guest"), u.led.save(ctx)
}

func (gu *guestUp) items() []item {
	u := gu.u
	items := make([]item, len(u.guests))
	for i, pg := range u.guests {
		items[i] = func(ctx context.Context) error {
			pg.fresh = !pg.exists && !pg.stopped
			err := gu.ensure(ctx, pg)
			return objectError("guest "+pg.g.Name, err)
		}
	}
	return items
}

// ensure makes, keeps, repairs or re-makes one guest.
func (gu *guestUp) ensure(ctx context.Context, pg *placed) error {
	u := gu.u
	g, host := pg.g, pg.host.Name()
	remake := pg.exists && (u.opts.Provision || pg.remake != "")
	switch {
	case pg.stopped:
		u.log.Printf("    guest %s: stopped (kvm-compose stop): left stopped; start it with kvm-compose start %s", g.Name, g.Name)
		return nil
	case pg.exists && !remake && len(pg.repair) > 0:
		return gu.reattach(ctx, pg)
	case pg.exists && !remake:
		u.log.Printf("    guest %s: already up%s", g.Name, onHost(u.st, host))
		return nil
	case remake:
		why := ifThen(u.opts.Provision, "provision", pg.remake)
		u.log.Printf("    guest %s: %s: re-creating", g.Name, why)
		if err := pg.drv.Destroy(ctx, pg.dep, g, u.log); err != nil {
			return err
		}
	}
	created, err := pg.drv.Create(ctx, pg.dep, g, u.log)
	if err != nil {
		// Create leaves nothing of what it made.
		u.led.edit(func(r *Record) { delete(r.host(host).Guests, g.Name) })
		return err
	}
	var gr GuestRecord
	u.led.edit(func(r *Record) {
		gr = GuestRecord{Guest: *g, Impairments: r.host(host).Guests[g.Name].Impairments}
		r.host(host).Guests[g.Name] = gr
	})
	if imps, err := impairGuest(ctx, pg.host, gr, g); err != nil {
		if created {
			_ = pg.drv.Destroy(context.WithoutCancel(ctx), pg.dep, g, u.log)
			u.led.edit(func(r *Record) { delete(r.host(host).Guests, g.Name) })
		}
		return err
	} else if imps != "" {
		u.log.Printf("    guest %s: impaired %s", g.Name, imps)
	}
	if !created {
		u.log.Printf("    guest %s: %s was there and is running again%s", g.Name, g.Kind, onHost(u.st, host))
		return nil
	}
	pg.fresh = true
	u.made.add(func(ctx context.Context) error {
		// It came up and answered: say why it goes anyway.
		u.log.Printf("    guest %s: was up and ready, removed because this run failed elsewhere (see above)", g.Name)
		if err := pg.drv.Destroy(ctx, pg.dep, g, u.log); err != nil {
			return objectError("guest "+g.Name, err)
		}
		u.led.edit(func(r *Record) { delete(r.host(host).Guests, g.Name) })
		return nil
	})
	leases, err := u.leaseDynamic(ctx, pg)
	if err != nil {
		return err
	}
	if leases != nil {
		// The run-time impairments stay recorded beside the lease.
		gr.Leases = leases
		u.led.edit(func(r *Record) { r.host(host).Guests[g.Name] = gr })
	}
	u.log.Printf("    guest %s: %s up%s%s", g.Name, g.Kind, describeInterfaces(g), onHost(u.st, host))
	return nil
}

// reattach puts the host ends of a running guest's interfaces back on
// their bridges.
func (gu *guestUp) reattach(ctx context.Context, pg *placed) error {
	ports, err := PortsOf(pg.host)
	if err != nil {
		return err
	}
	for _, ifc := range pg.repair {
		if err := ports.AttachPorts(ctx, ifc.Bridge, []string{ifc.HostName}); err != nil {
			return fmt.Errorf("%s: put %s back on bridge %s: %w", ifc.Name, ifc.HostName, ifc.Bridge, err)
		}
		gu.u.log.Printf("    guest %s: %s was not on its switch %s: put back on bridge %s", pg.g.Name, ifc.Name, ifc.Switch, ifc.Bridge)
	}
	return nil
}

// forgetUnstarted forgets the guests this run recorded as pending whose
// item never started: nothing of them exists. Items that started leave no
// pending entry behind (they record the guest, or delete it when Create
// fails).
func (gu *guestUp) forgetUnstarted(r *Record) {
	for _, pg := range gu.u.guests {
		if pg.recorded {
			continue
		}
		h := r.host(pg.host.Name())
		if gr, ok := h.Guests[pg.g.Name]; ok && gr.Pending {
			delete(h.Guests, pg.g.Name)
		}
	}
}

// guestObject names what a guest is on its host.
func guestObject(g *topology.Guest) string {
	switch {
	case g.Netns != nil:
		return "namespace " + g.Netns.Namespace
	case g.Libvirt != nil:
		return "domain " + g.Libvirt.Domain
	case g.Docker != nil:
		return "container " + g.Docker.Container
	}
	return g.Kind + " guest"
}
