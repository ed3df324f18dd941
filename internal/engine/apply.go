package engine

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Impairer changes the link impairment of one interface of a running guest
// in place, without re-making the guest (netem qdiscs). It is the hook the
// impairment work fills (Options.Impairer); without one, a guest whose only
// change is its impairments is re-made. n nil clears the impairment.
type Impairer interface {
	Impair(ctx context.Context, host Host, dep guest.Deployment, g *topology.Guest, iface string, n *topology.Netem) error
}

// checkApply refuses, before anything is recorded, an apply that cannot
// run: a deployment that is down or has nothing recorded (ErrConflict), a
// YAML that does not validate.
func (e *Engine) checkApply(ctx context.Context, d api.Deployment, prev api.DeploymentState) error {
	if prev.Is(api.StateDown) {
		return fmt.Errorf("%w: deployment %s is down: run up, not apply", ErrConflict, d.Name)
	}
	p, err := e.makePlan(ctx, d)
	if err != nil {
		return err
	}
	return e.checkCapabilities(p.state)
}

// Apply brings a running deployment to what kvm-compose.yaml says now,
// doing exactly what Plan shows: it writes the new state (so later ups and
// downs read it), removes from the record's objects the removed and re-made
// ones (down's stages over a pick of the record), changes impairments in
// place, then runs up's stages over the new state: an unchanged guest is
// recorded and exists, so up keeps it and every process in it; added and
// re-made guests are made and run their setup scripts. A failed or
// cancelled apply reverts what it made, like up; what it removed stays
// removed.
func (e *Engine) Apply(ctx context.Context, d api.Deployment, log actlog.Log) (err error) {
	p, err := e.makePlan(ctx, d)
	if err != nil {
		return err
	}
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return err
	}
	dr := &downRun{e: e, d: d, led: led, log: log, pick: p}
	u := &upRun{e: e, d: d, st: p.state, led: led, log: log}
	stages := []stage{{name: "plan", prepare: func(ctx context.Context) (string, error) { return e.logPlan(ctx, d, p, log) }}}
	stages = append(stages, dr.stages("remove ")...)
	if len(p.impair) > 0 {
		stages = append(stages, stage{name: "impair", items: func() []item { return e.impairItems(d, p, led, log) }, noun: "guest", done: led.save})
	}
	stages = append(stages, u.stages()...)
	prog := newProgress(log, "apply", len(stages))
	defer func() { u.revertIfFailed(ctx, err, "apply", "what it removed stays removed") }()
	return e.runStages(ctx, prog, stages)
}

// logPlan writes the plan into the log and the new state into the project,
// before anything changes: up and down read it from now on.
func (e *Engine) logPlan(ctx context.Context, d api.Deployment, p *planned, log actlog.Log) (string, error) {
	for _, c := range p.plan.Changes {
		line := fmt.Sprintf("    %s %s %s", c.Op, c.Kind, c.Name)
		if c.Host != "" && len(p.state.Hosts) > 1 {
			line += " on " + c.Host
		}
		if c.Why != "" {
			line += ": " + c.Why
		}
		log.Printf("%s", line)
	}
	if err := e.writeGenerated(ctx, d, p.state, log); err != nil {
		return "", err
	}
	if p.plan.Empty() {
		return "no changes: the deployment is what kvm-compose.yaml says", nil
	}
	return fmt.Sprintf("%s, %s unchanged", count(len(p.plan.Changes), "change"), count(len(p.plan.Unchanged), "object")), nil
}

// impairItems change the impairments of the plan's impair guests in place
// (interfaces whose netem changed, and those with a run-time setting, set
// back to kvm-compose.yaml) and record the new description, without the
// run-time settings.
func (e *Engine) impairItems(d api.Deployment, p *planned, led *ledger, log actlog.Log) []item {
	items := make([]item, len(p.impair))
	for i := range p.impair {
		g := &p.impair[i]
		items[i] = func(ctx context.Context) error {
			host, err := e.opts.Hosts.Host(g.Host)
			if err != nil {
				return fmt.Errorf("guest %s: %w", g.Name, err)
			}
			var old GuestRecord
			led.view(func(r *Record) { old = r.host(g.Host).Guests[g.Name] })
			dep := guestDeployment(d.Name, host, d.ProjectLocation)
			for j, ifc := range g.Interfaces {
				var before *topology.Netem
				if j < len(old.Guest.Interfaces) {
					before = old.Guest.Interfaces[j].Netem
				}
				_, runtime := old.Impairments[ifc.Name]
				if len(diffValues(before, ifc.Netem)) == 0 && !runtime {
					continue
				}
				if err := e.opts.Impairer.Impair(ctx, host, dep, g, ifc.Name, ifc.Netem); err != nil {
					return fmt.Errorf("guest %s: %s: impairment: %w", g.Name, ifc.Name, err)
				}
				log.Printf("    guest %s: %s impairment %s", g.Name, ifc.Name, describeNetem(ifc.Netem))
			}
			led.edit(func(r *Record) { r.host(g.Host).Guests[g.Name] = GuestRecord{Guest: *g} })
			return nil
		}
	}
	return items
}

func describeNetem(n *topology.Netem) string {
	if n.IsZero() {
		return "cleared"
	}
	return n.String()
}
