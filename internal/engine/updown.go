package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// revertTimeout bounds the clean-up after a failed or cancelled up.
const revertTimeout = 5 * time.Minute

// errScripts marks a failure of the setup-script stage: guests stay up.
var errScripts = errors.New("setup scripts failed")

// placed is a guest of the state with the host and driver it runs on.
type placed struct {
	g    *topology.Guest
	host Host
	drv  guest.Driver
	dep  guest.Deployment
}

// placedBridge is a switch's bridge on one host.
type placedBridge struct {
	sw   topology.Switch
	host Host
}

// Up brings the deployment's state up: Init → hosts → network → guests →
// setup scripts → End. It is idempotent: what the record holds and exists is
// kept (unless opts.Provision re-makes guests), and setup scripts run only on
// guests made by this run (unless opts.RerunScripts). Every object is
// recorded before it is made, so down finds it whatever happens next. If a
// stage before the scripts fails, or the action is cancelled, what this run
// made is removed again; what was there before stays. A failing setup script
// leaves the guests up for inspection; down removes them.
func (e *Engine) Up(ctx context.Context, d api.Deployment, opts api.UpOptions, log actlog.Log) (err error) {
	st, err := e.readState(d)
	if err != nil {
		return err
	}
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return err
	}
	led.edit(func(r *Record) { r.Project = d.ProjectLocation })
	u := &upRun{e: e, d: d, st: st, opts: opts, led: led, log: log}
	stages := u.stages()
	p := newProgress(log, "up", len(stages))
	defer func() { u.revertIfFailed(ctx, err, "up", "") }()
	return e.runStages(ctx, p, stages)
}

// revertIfFailed undoes what the run made when err ended it (a failed
// setup script alone does not: the guests stay up), and says in the log
// how that went. what names the action; kept, if any, what stays as it is.
func (u *upRun) revertIfFailed(ctx context.Context, err error, what, kept string) {
	if err == nil || ctx.Err() == nil && errors.Is(err, errScripts) {
		return
	}
	u.log.Printf("==> reverting what this %s made", what)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	rerr := u.made.run(rctx)
	u.dropUnstarted()
	if serr := u.led.save(rctx); serr != nil {
		rerr = errors.Join(rerr, serr)
	}
	switch {
	case rerr != nil:
		u.log.Printf("revert incomplete: %v (run down to finish)", rerr)
	case kept != "":
		u.log.Printf("reverted: nothing this %s made is left (%s)", what, kept)
	default:
		u.log.Printf("reverted: nothing this %s made is left", what)
	}
}

// upRun is one up in progress.
type upRun struct {
	e    *Engine
	d    api.Deployment
	st   *topology.State
	opts api.UpOptions
	led  *ledger
	log  actlog.Log

	made    revert
	guests  []placed
	bridges []placedBridge
	fresh   []bool // by index into guests: made by this run

	ownedBefore []bool // by index into bridges: made by an earlier up
	plannedMade []bool // by index into bridges: missing, so this up makes it
	// bridgeRecorded: in the record before this run; bridgeStarted: its
	// item ran (a failing stage stops starting items).
	bridgeRecorded, bridgeStarted []bool

	addedPending []bool // by index into guests: recorded as pending by this run

	tunnels        []placedTunnel
	tunnelOwned    []bool // by index into tunnels: made by an earlier up
	tunnelRecorded []bool // by index into tunnels: in the record before this run
	tunnelStarted  []bool // by index into tunnels: its item ran

	routers                                    []placedRouter
	routerRecorded, routerOwned, routerStarted []bool // by index into routers
}

// stages are up's stages; "tunnels" comes after "network" only when a
// switch spans hosts, so a deployment on one host keeps its six.
func (u *upRun) stages() []stage {
	st := []stage{
		{name: "init", prepare: u.resolve},
		{name: "hosts", detail: func() string { return count(len(u.hostNames()), "host") }},
		{name: "network", prepare: u.planBridges, items: u.bridgeItems, done: u.led.save},
	}
	st = append(st, u.tunnelStage()...)
	st = append(st, u.routerStage()...)
	st = append(st, u.aclStage()...)
	return append(st,
		stage{name: "guests", prepare: u.planGuests, items: u.guestItems, done: u.led.save},
		stage{name: "setup", items: u.scriptItems, noun: "setup script", collect: true, wrap: errScripts},
		stage{name: "end", detail: func() string { return "deployment " + u.d.Name + " is up" }},
	)
}

// resolve finds every guest's host and driver.
func (u *upRun) resolve(ctx context.Context) (string, error) {
	hosts := map[string]Host{}
	for i := range u.st.Guests {
		g := &u.st.Guests[i]
		h, ok := hosts[g.Host]
		if !ok {
			var err error
			if h, err = u.e.opts.Hosts.Host(g.Host); err != nil {
				return "", fmt.Errorf("guest %s: %w", g.Name, err)
			}
			hosts[g.Host] = h
		}
		drv, err := h.Driver(g.Kind)
		if err != nil {
			return "", fmt.Errorf("guest %s: %w", g.Name, err)
		}
		u.guests = append(u.guests, placed{g: g, host: h, drv: drv, dep: guest.Deployment{Name: u.d.Name, Files: h.Files(u.d.ProjectLocation)}})
	}
	u.fresh = make([]bool, len(u.guests))
	// Each host gets the bridges of the switches its guests use.
	seen := map[[2]string]bool{}
	byName := map[string]topology.Switch{}
	for _, sw := range u.st.Switches {
		byName[sw.Name] = sw
	}
	for _, pg := range u.guests {
		for _, ifc := range pg.g.Interfaces {
			key := [2]string{pg.host.Name(), ifc.Switch}
			if !seen[key] {
				seen[key] = true
				u.bridges = append(u.bridges, placedBridge{sw: byName[ifc.Switch], host: pg.host})
			}
		}
	}
	if err := u.routerBridges(seen, byName); err != nil {
		return "", err
	}
	sort.Slice(u.bridges, func(i, j int) bool {
		a, b := u.bridges[i], u.bridges[j]
		return a.host.Name() < b.host.Name() || a.host.Name() == b.host.Name() && a.sw.Name < b.sw.Name
	})
	return fmt.Sprintf("%s, %s", count(len(u.st.Guests), "guest"), count(len(u.st.Switches), "switch")), nil
}

func (u *upRun) hostNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, pg := range u.guests {
		if !seen[pg.host.Name()] {
			seen[pg.host.Name()] = true
			out = append(out, pg.host.Name())
		}
	}
	return out
}

// planBridges records, before anything is made, every bridge this up will
// make; a bridge that exists without being in the record is used but never
// deleted.
func (u *upRun) planBridges(ctx context.Context) (string, error) {
	owned := make([]bool, len(u.bridges))
	u.ownedBefore = make([]bool, len(u.bridges))
	u.bridgeRecorded = make([]bool, len(u.bridges))
	u.bridgeStarted = make([]bool, len(u.bridges))
	err := forEach(ctx, u.e.opts.Concurrency, len(u.bridges), true, func(ctx context.Context, i int) error {
		b := u.bridges[i]
		var rec BridgeRecord
		var inRecord bool
		u.led.view(func(r *Record) { rec, inRecord = r.host(b.host.Name()).Bridges[b.sw.Bridge] })
		u.bridgeRecorded[i] = inRecord
		if inRecord && rec.Made {
			owned[i], u.ownedBefore[i] = true, true
			return nil
		}
		exists, err := b.host.Network().HasBridge(ctx, b.sw.Bridge)
		if err != nil {
			return fmt.Errorf("switch %s on %s: %w", b.sw.Name, b.host.Name(), err)
		}
		owned[i] = !exists
		return nil
	})
	if err != nil {
		return "", err
	}
	u.plannedMade = owned
	u.led.edit(func(r *Record) {
		for i, b := range u.bridges {
			r.host(b.host.Name()).Bridges[b.sw.Bridge] = BridgeRecord{Switch: b.sw.Name, Made: owned[i], Firewall: true}
		}
	})
	return count(len(u.bridges), "switch"), u.led.save(ctx)
}

func (u *upRun) bridgeItems() []item {
	items := make([]item, len(u.bridges))
	for i, b := range u.bridges {
		items[i] = func(ctx context.Context) error {
			net, host := b.host.Network(), b.host.Name()
			u.bridgeStarted[i] = true
			created, err := net.EnsureBridge(ctx, b.sw.Bridge)
			if err == nil && !created && !u.ownedBefore[i] {
				// Used, not owned: a revert takes back only the rules.
				u.made.add(func(ctx context.Context) error {
					err := net.RemoveBridge(ctx, b.sw.Bridge)
					if err == nil {
						u.led.edit(func(r *Record) { delete(r.host(host).Bridges, b.sw.Bridge) })
					}
					return err
				})
			}
			if err != nil {
				if u.plannedMade[i] && !u.ownedBefore[i] {
					// It was missing and may exist now (a remote host can
					// finish what the main gave up waiting for): undo it
					// by name, as if made.
					u.made.add(func(ctx context.Context) error {
						err := errors.Join(net.RemoveBridge(ctx, b.sw.Bridge), net.DeleteBridge(ctx, b.sw.Bridge))
						if err == nil {
							u.led.edit(func(r *Record) { delete(r.host(host).Bridges, b.sw.Bridge) })
						}
						return err
					})
				} else {
					u.correctBridge(i, false)
				}
				return fmt.Errorf("switch %s: %w", b.sw.Name, err)
			}
			if created {
				u.made.add(func(ctx context.Context) error {
					err := errors.Join(net.RemoveBridge(ctx, b.sw.Bridge), net.DeleteBridge(ctx, b.sw.Bridge))
					if err == nil {
						u.led.edit(func(r *Record) { delete(r.host(host).Bridges, b.sw.Bridge) })
					}
					return err
				})
			} else {
				u.correctBridge(i, true)
			}
			if err := net.AllowBridge(ctx, b.sw.Bridge); err != nil {
				return fmt.Errorf("switch %s: firewall: %w", b.sw.Name, err)
			}
			u.log.Printf("    switch %s: bridge %s %s%s", b.sw.Name, b.sw.Bridge, ifThen(created, "created", "already there"), onHost(u.st, host))
			return nil
		}
	}
	return items
}

// correctBridge fixes the record of bridge i after EnsureBridge: a bridge
// that an earlier up made stays owned; one this run expected to make but
// found is only used (made false), or forgotten when it could not be had.
func (u *upRun) correctBridge(i int, found bool) {
	if u.ownedBefore[i] {
		return
	}
	b := u.bridges[i]
	u.led.edit(func(r *Record) {
		h := r.host(b.host.Name())
		if !found {
			delete(h.Bridges, b.sw.Bridge)
			return
		}
		rec := h.Bridges[b.sw.Bridge]
		rec.Made = false
		h.Bridges[b.sw.Bridge] = rec
	})
}

// planGuests decides for every guest what this up does with it, and records
// the guests it will make before making any. A guest that exists but is not
// in the record was not made by this deployment: up refuses to touch it.
func (u *upRun) planGuests(ctx context.Context) (string, error) {
	type plan struct {
		exists, recorded bool
		found            guest.Found // in any form, and whose
	}
	plans := make([]plan, len(u.guests))
	err := forEach(ctx, u.e.opts.Concurrency, len(u.guests), true, func(ctx context.Context, i int) error {
		pg := u.guests[i]
		found, err := guest.Find(ctx, pg.drv, pg.dep, pg.g)
		if err != nil {
			return fmt.Errorf("guest %s: %w", pg.g.Name, err)
		}
		exists := found.Complete
		plans[i].found = found
		u.led.view(func(r *Record) { _, plans[i].recorded = r.host(pg.host.Name()).Guests[pg.g.Name] })
		plans[i].exists = exists
		return nil
	})
	if err != nil {
		return "", err
	}
	var foreign []string
	for i, pl := range plans {
		// What another made is never adopted, even in a recorded
		// guest's place; what carries no mark is ours only if recorded.
		f := pl.found
		if f.Presence == guest.Foreign || (f.Presence != guest.Absent || pl.exists) && !pl.recorded {
			what := f.What
			if what == "" {
				what = guestObject(u.guests[i].g)
			}
			foreign = append(foreign, fmt.Sprintf("%s (%s)", u.guests[i].g.Name, what))
		}
	}
	if len(foreign) > 0 {
		return "", fmt.Errorf("%w: %s already exist but deployment %s did not make them; remove them or rename the guests",
			ErrConflict, strings.Join(foreign, ", "), u.d.Name)
	}
	u.led.edit(func(r *Record) {
		for i, pg := range u.guests {
			if !plans[i].recorded {
				r.host(pg.host.Name()).Guests[pg.g.Name] = GuestRecord{Guest: *pg.g, Pending: true}
			}
		}
	})
	u.addedPending = make([]bool, len(u.guests))
	for i := range u.guests {
		u.fresh[i] = !plans[i].exists
		u.addedPending[i] = !plans[i].recorded
	}
	return count(len(u.guests), "guest"), u.led.save(ctx)
}

func (u *upRun) guestItems() []item {
	items := make([]item, len(u.guests))
	for i, pg := range u.guests {
		items[i] = func(ctx context.Context) error {
			g, host := pg.g, pg.host.Name()
			if !u.fresh[i] && !u.opts.Provision {
				u.log.Printf("    guest %s: already up%s", g.Name, onHost(u.st, host))
				return nil
			}
			if !u.fresh[i] {
				u.log.Printf("    guest %s: provision: re-creating", g.Name)
				if err := pg.drv.Destroy(ctx, pg.dep, g, u.log); err != nil {
					return fmt.Errorf("guest %s: %w", g.Name, err)
				}
			}
			created, err := pg.drv.Create(ctx, pg.dep, g, u.log)
			if err != nil {
				if u.fresh[i] || u.opts.Provision {
					// Create leaves nothing of what it made.
					u.led.edit(func(r *Record) { delete(r.host(host).Guests, g.Name) })
				}
				return fmt.Errorf("guest %s: %w", g.Name, err)
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
			u.fresh[i] = true
			u.made.add(func(ctx context.Context) error {
				if err := pg.drv.Destroy(ctx, pg.dep, g, u.log); err != nil {
					return fmt.Errorf("guest %s: %w", g.Name, err)
				}
				u.led.edit(func(r *Record) { delete(r.host(host).Guests, g.Name) })
				return nil
			})
			leases, err := u.leaseDynamic(ctx, pg)
			if err != nil {
				return fmt.Errorf("guest %s: %w", g.Name, err)
			}
			if leases != nil {
				// The run-time impairments stay recorded beside the lease.
				gr.Leases = leases
				u.led.edit(func(r *Record) { r.host(host).Guests[g.Name] = gr })
			}
			u.log.Printf("    guest %s: %s up%s%s", g.Name, g.Kind, describeInterfaces(g), onHost(u.st, host))
			return nil
		}
	}
	return items
}

func (u *upRun) scriptItems() []item {
	var items []item
	for i, pg := range u.guests {
		g := pg.g
		var scripts []string
		if g.SetupScript != "" {
			scripts = append(scripts, g.SetupScript)
		}
		scripts = append(scripts, g.CloneScripts...)
		if len(scripts) == 0 || !u.fresh[i] && !u.opts.RerunScripts {
			continue
		}
		items = append(items, func(ctx context.Context) error {
			for _, script := range scripts {
				u.log.Printf("    guest %s: running %s", g.Name, script)
				if err := pg.drv.RunScript(ctx, pg.dep, g, script, u.log); err != nil {
					return fmt.Errorf("guest %s: setup script %s: %w", g.Name, script, err)
				}
			}
			u.log.Printf("    guest %s: setup script done", g.Name)
			return nil
		})
	}
	return items
}

// Down removes every guest and bridge that the record of the deployment
// holds, guests first, carrying on past errors so one stuck guest does not
// keep the others alive. It works from the record alone: the project folder
// may have changed or gone. What it could not remove stays recorded, so
// running down again finishes the job.
func (e *Engine) Down(ctx context.Context, d api.Deployment, log actlog.Log) error {
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return err
	}
	var guests, bridges, tunnels int
	led.view(func(r *Record) { guests, bridges = r.counts(); tunnels = r.tunnels() + r.routerCount() })
	if guests+bridges+tunnels == 0 {
		log.Printf("deployment %s has nothing deployed: nothing to do", d.Name)
		return led.save(ctx)
	}
	dr := &downRun{e: e, d: d, led: led, log: log}
	stages := dr.stages()
	p := newProgress(log, "down", len(stages)+1)
	err = e.runStages(ctx, p, stages)
	if err != nil {
		return err
	}
	if len(dr.offlineHosts) > 0 {
		p.stage("end", "deployment %s is down; offline hosts are cleaned when they come back", d.Name)
		return nil
	}
	p.stage("end", "deployment %s is down", d.Name)
	return nil
}

// downStages are down's stages over what dr's record holds.
func (dr *downRun) stages() []stage {
	led := dr.led
	// Destroys batch their kernel work (netns), so many at once pay.
	stages := []stage{{name: "guests", prepare: dr.planGuests, items: dr.guestItems, collect: true, limit: dr.e.opts.DestroyConcurrency, done: led.save}}
	stages = append(stages, dr.aclStage()...)
	stages = append(stages, dr.tunnelStage()...)
	stages = append(stages, dr.routerStage()...)
	return append(stages, stage{name: "network", prepare: dr.planBridges, items: dr.bridgeItems, collect: true, done: led.save})
}

// CleanHost removes what deployment d's record holds on host, and only
// there: the clean-up of a host that was offline during down, once it is
// back. A record with nothing on host is left alone.
func (e *Engine) CleanHost(ctx context.Context, d api.Deployment, host string, log actlog.Log) (cleaned bool, err error) {
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return false, err
	}
	var has bool
	led.view(func(r *Record) {
		h, ok := r.Hosts[host]
		has = ok && (len(h.Guests)+len(h.Bridges)+len(h.Tunnels)+len(h.ACLTables) > 0)
	})
	if !has {
		return false, nil
	}
	dr := &downRun{e: e, d: d, led: led, log: log, only: host}
	if err := e.runStages(ctx, newProgress(log, "clean "+host, 3), dr.stages()); err != nil {
		return false, err
	}
	return len(dr.offlineHosts) == 0, nil
}

// downRun is one down in progress.
type downRun struct {
	e   *Engine
	d   api.Deployment
	led *ledger
	log actlog.Log

	guests  []recordedGuest
	bridges []recordedBridge
	tunnels []recordedTunnel
	routers []recordedRouter

	// only, when set, limits the run to one host (CleanHost).
	only string
	// pick, when set, limits the run to the plan's removals (Apply).
	pick *planned
	// offlineHosts could not be reached: what the record holds there stays
	// recorded, for CleanHost when the host comes back.
	mu           sync.Mutex
	offlineHosts map[string]bool
}

// hostsOf lists the hosts of the record this run works on.
func (dr *downRun) hostsOf(r *Record) []string {
	if dr.only != "" {
		if _, ok := r.Hosts[dr.only]; ok {
			return []string{dr.only}
		}
		return nil
	}
	return r.hostNames()
}

// offline turns the failure of an unreachable host into a note: its part
// of the record stays, and CleanHost removes it when the host is back. Any
// other error is returned as it is.
func (dr *downRun) offline(host string, err error) error {
	if !errors.Is(err, ErrHostUnreachable) {
		return err
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if dr.offlineHosts == nil {
		dr.offlineHosts = map[string]bool{}
	}
	if !dr.offlineHosts[host] {
		dr.offlineHosts[host] = true
		dr.log.Printf("    host %s is offline: what deployment %s has there is removed when it comes back (%v)", host, dr.d.Name, err)
	}
	return nil
}

type recordedGuest struct {
	host string
	g    topology.Guest
}

type recordedBridge struct {
	host, name string
	rec        BridgeRecord
}

func (dr *downRun) planGuests(ctx context.Context) (string, error) {
	dr.led.view(func(r *Record) {
		for _, h := range dr.hostsOf(r) {
			for _, gr := range r.Hosts[h].Guests {
				if !dr.picked(pickGuests, h, gr.Guest.Name) {
					continue
				}
				dr.guests = append(dr.guests, recordedGuest{host: h, g: gr.Guest})
			}
		}
	})
	sort.Slice(dr.guests, func(i, j int) bool { return dr.guests[i].g.Name < dr.guests[j].g.Name })
	return count(len(dr.guests), "guest"), nil
}

func (dr *downRun) guestItems() []item {
	items := make([]item, len(dr.guests))
	for i, rg := range dr.guests {
		items[i] = func(ctx context.Context) error {
			g := &rg.g
			host, err := dr.e.opts.Hosts.Host(rg.host)
			if err != nil {
				return dr.offline(rg.host, fmt.Errorf("guest %s: %w", g.Name, err))
			}
			drv, err := host.Driver(g.Kind)
			if err != nil {
				return dr.offline(rg.host, fmt.Errorf("guest %s: %w", g.Name, err))
			}
			dep := guest.Deployment{Name: dr.d.Name, Files: host.Files(dr.projectOf())}
			if err := drv.Destroy(ctx, dep, g, dr.log); err != nil {
				return dr.offline(rg.host, fmt.Errorf("guest %s: %w", g.Name, err))
			}
			dr.led.edit(func(r *Record) { delete(r.host(rg.host).Guests, g.Name) })
			dr.log.Printf("    guest %s: removed", g.Name)
			return nil
		}
	}
	return items
}

// projectOf is the project folder the record was made from: the files of
// its guests are there, whatever the deployment says now.
func (dr *downRun) projectOf() string {
	var p string
	dr.led.view(func(r *Record) { p = r.Project })
	if p == "" {
		return dr.d.ProjectLocation
	}
	return p
}

func (dr *downRun) planBridges(ctx context.Context) (string, error) {
	dr.led.view(func(r *Record) {
		for _, h := range dr.hostsOf(r) {
			for name, br := range r.Hosts[h].Bridges {
				if !dr.picked(pickBridges, h, name) {
					continue
				}
				dr.bridges = append(dr.bridges, recordedBridge{host: h, name: name, rec: br})
			}
		}
	})
	sort.Slice(dr.bridges, func(i, j int) bool { return dr.bridges[i].name < dr.bridges[j].name })
	return count(len(dr.bridges), "switch"), nil
}

func (dr *downRun) bridgeItems() []item {
	items := make([]item, len(dr.bridges))
	for i, b := range dr.bridges {
		items[i] = func(ctx context.Context) error {
			host, err := dr.e.opts.Hosts.Host(b.host)
			if err != nil {
				return dr.offline(b.host, fmt.Errorf("switch %s: %w", b.rec.Switch, err))
			}
			net := host.Network()
			var errs []error
			if b.rec.Firewall {
				errs = append(errs, net.RemoveBridge(ctx, b.name))
			}
			if b.rec.Made {
				errs = append(errs, net.DeleteBridge(ctx, b.name))
			}
			if err := errors.Join(errs...); err != nil {
				return dr.offline(b.host, fmt.Errorf("switch %s: %w", b.rec.Switch, err))
			}
			dr.led.edit(func(r *Record) { delete(r.host(b.host).Bridges, b.name) })
			dr.log.Printf("    switch %s: bridge %s %s", b.rec.Switch, b.name, ifThen(b.rec.Made, "removed", "kept (it was there before), its firewall rules removed"))
			return nil
		}
	}
	return items
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

// onHost names the host in a line when the deployment spans several.
func onHost(st *topology.State, host string) string {
	if len(st.Hosts) <= 1 {
		return ""
	}
	return " on " + host
}

func describeInterfaces(g *topology.Guest) string {
	s := ""
	for _, ifc := range g.Interfaces {
		s += fmt.Sprintf(", %s %s on %s", ifc.Name, ifc.Address, ifc.Switch)
	}
	return s
}

// count writes "1 switch", "3 switches".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ch") || strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func ifThen(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

// revert collects undo steps; run performs them newest first.
type revert struct {
	mu    sync.Mutex
	steps []func(context.Context) error
}

func (r *revert) add(step func(context.Context) error) {
	r.mu.Lock()
	r.steps = append(r.steps, step)
	r.mu.Unlock()
}

func (r *revert) run(ctx context.Context) error {
	r.mu.Lock()
	steps := r.steps
	r.steps = nil
	r.mu.Unlock()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		errs = append(errs, steps[i](ctx))
	}
	return errors.Join(errs...)
}
