package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// revertTimeout bounds the clean-up after a failed or cancelled up.
const revertTimeout = 5 * time.Minute

// Up brings the deployment's state up: Init → hosts → network → guests →
// setup scripts → End. It is idempotent: what exists already is kept (unless
// opts.Provision), and setup scripts run only on guests made by this run
// (unless opts.RerunScripts). If a stage before the scripts fails, or the
// action is cancelled, everything this run made is removed again. A failing
// setup script leaves the guests up for inspection; down removes them.
func (e *Engine) Up(ctx context.Context, d api.Deployment, opts api.UpOptions, log guest.Log) (err error) {
	st, err := topology.ReadState(topology.StatePath(d.ProjectLocation))
	if err != nil {
		return fmt.Errorf("read artefacts: %w", err)
	}
	p := newProgress(log, "up", 6)
	var made revert
	defer func() {
		if err == nil {
			return
		}
		if ctx.Err() == nil && errors.Is(err, errScripts) {
			return
		}
		log.Printf("==> reverting what this up made")
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
		defer cancel()
		if rerr := made.run(rctx); rerr != nil {
			log.Printf("revert incomplete: %v (run down to finish)", rerr)
		} else {
			log.Printf("reverted: nothing of this up is left")
		}
	}()

	drivers := make([]guest.Driver, len(st.Guests))
	p.stage("init", "%s, %s", count(len(st.Guests), "guest"), count(len(st.Switches), "switch"))
	for i, g := range st.Guests {
		drv, err := e.opts.Drivers.Driver(g.Kind)
		if err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		drivers[i] = drv
	}

	p.stage("hosts", "%s", count(len(st.Hosts), "host"))
	local := e.opts.Hosts()[0].Name
	for _, g := range st.Guests {
		if g.Host != local {
			return fmt.Errorf("guest %s is placed on host %s, but this host is %s and remote hosts are not driven yet", g.Name, g.Host, local)
		}
	}

	switches := usedSwitches(st)
	p.stage("network", "%s", count(len(switches), "switch"))
	err = forEach(ctx, e.opts.Concurrency, len(switches), true, func(ctx context.Context, i int) error {
		sw := switches[i]
		created, err := e.opts.Network.EnsureBridge(ctx, sw.Bridge)
		if err != nil {
			return fmt.Errorf("switch %s: %w", sw.Name, err)
		}
		if created {
			made.add(func(ctx context.Context) error { return e.opts.Network.DeleteBridge(ctx, sw.Bridge) })
		}
		if err := e.opts.Network.AllowBridge(sw.Bridge); err != nil {
			return fmt.Errorf("switch %s: firewall: %w", sw.Name, err)
		}
		if created {
			made.add(func(context.Context) error { return e.opts.Network.RemoveBridge(sw.Bridge) })
		}
		p.item("switch %s: bridge %s %s", sw.Name, sw.Bridge, ifThen(created, "created", "already there"))
		return nil
	})
	if err != nil {
		return err
	}

	p.stage("guests", "%s", count(len(st.Guests), "guest"))
	fresh := make([]bool, len(st.Guests))
	err = forEach(ctx, e.opts.Concurrency, len(st.Guests), true, func(ctx context.Context, i int) error {
		g, drv := &st.Guests[i], drivers[i]
		exists, err := drv.Exists(ctx, g)
		if err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		if exists && !opts.Provision {
			p.item("guest %s: already up", g.Name)
			return nil
		}
		if exists {
			p.item("guest %s: provision: re-creating", g.Name)
			if err := drv.Destroy(ctx, st, g, log); err != nil {
				return fmt.Errorf("guest %s: %w", g.Name, err)
			}
		}
		if err := drv.Create(ctx, st, g, log); err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		made.add(func(ctx context.Context) error { return drv.Destroy(ctx, st, g, log) })
		fresh[i] = true
		p.item("guest %s: %s up%s", g.Name, g.Kind, describeInterfaces(g))
		return nil
	})
	if err != nil {
		return err
	}

	var scripts []int
	for i, g := range st.Guests {
		if g.SetupScript != "" && (fresh[i] || opts.RerunScripts) {
			scripts = append(scripts, i)
		}
	}
	p.stage("setup", "%s", count(len(scripts), "setup script"))
	err = forEach(ctx, e.opts.Concurrency, len(scripts), false, func(ctx context.Context, j int) error {
		g := &st.Guests[scripts[j]]
		p.item("guest %s: running %s", g.Name, g.SetupScript)
		if err := drivers[scripts[j]].RunScript(ctx, st, g, g.SetupScript, log); err != nil {
			return fmt.Errorf("guest %s: setup script %s: %w", g.Name, g.SetupScript, err)
		}
		p.item("guest %s: setup script done", g.Name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errScripts, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.stage("end", "deployment %s is up", d.Name)
	return nil
}

// errScripts marks a failure of the setup-script stage: guests stay up.
var errScripts = errors.New("setup scripts failed")

// Down removes every guest and switch of the state, in reverse order. It is
// idempotent and carries on past errors so one stuck guest does not keep the
// others alive; the errors are reported together.
func (e *Engine) Down(ctx context.Context, d api.Deployment, prev api.DeploymentState, log guest.Log) error {
	st, err := topology.ReadState(topology.StatePath(d.ProjectLocation))
	if errors.Is(err, fs.ErrNotExist) && !mayBeDeployed(prev) {
		log.Printf("no artefacts and nothing deployed: nothing to do")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read artefacts: %w", err)
	}
	p := newProgress(log, "down", 3)
	p.stage("guests", "%s", count(len(st.Guests), "guest"))
	errGuests := forEach(ctx, e.opts.DestroyConcurrency, len(st.Guests), false, func(ctx context.Context, i int) error {
		g := &st.Guests[i]
		drv, err := e.opts.Drivers.Driver(g.Kind)
		if err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		if err := drv.Destroy(ctx, st, g, log); err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		p.item("guest %s: removed", g.Name)
		return nil
	})
	switches := usedSwitches(st)
	p.stage("network", "%s", count(len(switches), "switch"))
	errNet := forEach(ctx, e.opts.Concurrency, len(switches), false, func(ctx context.Context, i int) error {
		sw := switches[i]
		err := errors.Join(e.opts.Network.RemoveBridge(sw.Bridge), e.opts.Network.DeleteBridge(ctx, sw.Bridge))
		if err != nil {
			return fmt.Errorf("switch %s: %w", sw.Name, err)
		}
		p.item("switch %s: bridge %s removed", sw.Name, sw.Bridge)
		return nil
	})
	if err := errors.Join(errGuests, errNet); err != nil {
		return err
	}
	p.stage("end", "deployment %s is down", d.Name)
	return nil
}

func usedSwitches(st *topology.State) []topology.Switch {
	used := map[string]bool{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			used[ifc.Switch] = true
		}
	}
	var out []topology.Switch
	for _, sw := range st.Switches {
		if used[sw.Name] {
			out = append(out, sw)
		}
	}
	return out
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
