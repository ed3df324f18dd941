package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
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

// Up brings the deployment's state up: init, hosts, then one stage per kind
// of object (network, tunnels, routers, acl, guests), setup scripts, end.
// It is idempotent: what the record holds and exists is kept, and what the
// record holds but is missing or broken (a bridge deleted by hand, a guest
// whose interface lost its bridge) is made or repaired; opts.Provision
// re-makes guests. Setup scripts run only on guests made by this run
// (unless opts.RerunScripts). Every object is recorded before it is made,
// so down finds it whatever happens next. If a stage before the scripts
// fails, or the action is cancelled, what this run made is removed again;
// what was there before stays. A failing setup script leaves the guests up
// for inspection; down removes them.
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
	for _, n := range st.Notes {
		log.Printf("note: %s", n)
	}
	stages := u.stages()
	p := newProgress(log, "up", len(stages))
	defer func() { u.revertIfFailed(ctx, err, "up", "") }()
	return e.runStages(ctx, p, stages)
}

// upRun is one up (or the up half of an apply) in progress.
type upRun struct {
	e    *Engine
	d    api.Deployment
	st   *topology.State
	opts api.UpOptions
	led  *ledger
	log  actlog.Log

	// made holds the undo of everything this run made, newest last.
	made revert
	// guests and bridges are the state's guests and the bridges they and
	// the routers need, placed on their hosts by the init stage.
	guests  []*placed
	bridges []*placedBridge
	// parts are the kinds' parts of this run, in stage order.
	parts []upPart
}

// placed is a guest of the state with the host and driver it runs on, and
// what this run decided and did with it.
type placed struct {
	g    *topology.Guest
	host Host
	drv  guest.Driver
	dep  guest.Deployment

	// exists: the guest was there when planned; recorded: the record held
	// it before this run; fresh: made by this run (its scripts run).
	exists, recorded, fresh bool
	// stopped: recorded stopped (power.go): up leaves it so.
	stopped bool
	// found is what the driver found of it in any form, and whose.
	found guest.Found
	// repair lists its interfaces whose host end is not on their bridge.
	repair []topology.Interface
	// remake: it exists but is broken past repair (an interface's host end
	// is gone), so it is made again.
	remake string
}

// placedBridge is a switch's bridge on one host, and what this run knows of
// it.
type placedBridge struct {
	sw   topology.Switch
	host Host
	// recorded: in the record before this run; owned: an earlier up made
	// it; toMake: missing, so this run makes it; started: its item ran.
	recorded, owned, toMake, started bool
}

// stages are up's stages: a kind has a stage only when the state has
// objects of it (a deployment on one host has no tunnels stage).
func (u *upRun) stages() []stage {
	st := []stage{
		{name: "init", prepare: u.resolve},
		{name: "hosts", detail: func() string { return count(len(u.hostNames()), "host") }},
	}
	for _, k := range u.e.kinds() {
		part := k.upPart(u)
		if part == nil {
			continue
		}
		u.parts = append(u.parts, part)
		st = append(st, stage{name: k.stage(), prepare: part.plan, items: part.items, done: u.led.save})
	}
	return append(st,
		stage{name: "setup", items: u.scriptItems, noun: "setup script", collect: true, wrap: errScripts},
		stage{name: "end", detail: func() string { return "deployment " + u.d.Name + " is up" }},
	)
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
	u.led.edit(func(r *Record) {
		for _, p := range u.parts {
			p.forgetUnstarted(r)
		}
	})
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

// resolve finds every guest's host and driver, and the bridges each host
// needs.
func (u *upRun) resolve(ctx context.Context) (string, error) {
	hosts := map[string]Host{}
	hostOf := func(name string) (Host, error) {
		if h, ok := hosts[name]; ok {
			return h, nil
		}
		h, err := u.e.opts.Hosts.Host(name)
		if err == nil {
			hosts[name] = h
		}
		return h, err
	}
	for i := range u.st.Guests {
		g := &u.st.Guests[i]
		h, err := hostOf(g.Host)
		if err != nil {
			return "", objectError("guest "+g.Name, err)
		}
		drv, err := h.Driver(g.Kind)
		if err != nil {
			return "", objectError("guest "+g.Name, err)
		}
		u.guests = append(u.guests, &placed{g: g, host: h, drv: drv, dep: guestDeployment(u.d.Name, h, u.d.ProjectLocation)})
	}
	// Each host gets the bridges of the switches its guests, routers and
	// external sides use.
	seen := map[[2]string]bool{}
	byName := map[string]topology.Switch{}
	for _, sw := range u.st.Switches {
		byName[sw.Name] = sw
	}
	add := func(hostName, sw string) error {
		key := [2]string{hostName, sw}
		if seen[key] {
			return nil
		}
		h, err := hostOf(hostName)
		if err != nil {
			return objectError("switch "+sw, err)
		}
		seen[key] = true
		u.bridges = append(u.bridges, &placedBridge{sw: byName[sw], host: h})
		return nil
	}
	for _, pg := range u.guests {
		for _, ifc := range pg.g.Interfaces {
			if err := add(pg.host.Name(), ifc.Switch); err != nil {
				return "", err
			}
		}
	}
	for _, r := range u.st.Routers {
		for _, p := range r.Ports {
			if err := add(r.Host, p.Switch); err != nil {
				return "", objectError("router "+r.Name, err)
			}
		}
	}
	for _, sw := range u.st.Switches {
		if sw.External != nil {
			if err := add(sw.External.Host, sw.Name); err != nil {
				return "", err
			}
		}
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

func (u *upRun) scriptItems() []item {
	var items []item
	for _, pg := range u.guests {
		g := pg.g
		var scripts []string
		if pg.fresh || u.opts.RerunScripts {
			if g.SetupScript != "" {
				scripts = append(scripts, g.SetupScript)
			}
			scripts = append(scripts, g.CloneScripts...)
		}
		// A cloud image's run_script runs at every up, after the setup.
		if g.Libvirt != nil && g.Libvirt.RunScript != "" {
			scripts = append(scripts, g.Libvirt.RunScript)
		}
		if len(scripts) == 0 || pg.stopped {
			continue
		}
		items = append(items, func(ctx context.Context) error {
			for _, script := range scripts {
				u.log.Printf("    guest %s: running %s", g.Name, script)
				if err := pg.drv.RunScript(ctx, pg.dep, g, script, u.log); err != nil {
					return objectError("guest "+g.Name, fmt.Errorf("setup script %s: %w", script, err))
				}
			}
			u.log.Printf("    guest %s: setup script done", g.Name)
			return nil
		})
	}
	return items
}

// onHost names the host in a line when the deployment spans several.
func onHost(st *topology.State, host string) string {
	return onHostName(len(st.Hosts), host)
}

func onHostName(hosts int, name string) string {
	if hosts <= 1 {
		return ""
	}
	return " on " + name
}

func describeInterfaces(g *topology.Guest) string {
	s := ""
	for _, ifc := range g.Interfaces {
		s += fmt.Sprintf(", %s %s on %s", ifc.Name, ifc.Address, ifc.Switch)
	}
	return s
}
