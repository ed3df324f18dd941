package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
)

// Power is an action on one guest of an up deployment: stop it, start it
// again, or both (restarted). The guest stays in the record; its Stopped
// field says which it is, written before a stop and after a start, so
// that up, apply and restore never start a guest the user stopped, and a
// start that fails leaves it recorded stopped. What stop and start mean
// for each kind is its driver's (guest.PowerSwitch). After a start, the
// run-time impairments recorded for the guest are set again on its links.

// ErrBadPower: power options out of range (422).
var ErrBadPower = api.Categorized(api.ErrInvalid, "invalid power change")

// asUp is the deployment as a power change or time line sees it: its
// action runs while the deployment is marked running, and Check made sure
// it was up before.
func asUp(d api.Deployment) api.Deployment {
	d.State = api.StateIsUp
	return d
}

// checkPower refuses, before the action is recorded, a power change of a
// deployment that is not up, of an unknown or unmade guest, or of a kind
// that cannot be stopped.
func (e *Engine) checkPower(ctx context.Context, d api.Deployment, prev api.DeploymentState, opts api.PowerOptions) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPower, err)
	}
	d.State = prev
	lg, err := e.recordedGuest(ctx, d, opts.Guest)
	if err != nil {
		return err
	}
	if _, err := guest.As[guest.PowerSwitch](lg.drv); err != nil {
		return lg.unsupported(err)
	}
	return nil
}

// Power stops, starts or restarts one guest, logging each step.
func (e *Engine) Power(ctx context.Context, d api.Deployment, opts api.PowerOptions, log actlog.Log) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	switch opts.State {
	case api.PowerStopped:
		return e.setPower(ctx, d, opts.Guest, false, log)
	case api.PowerRunning:
		return e.setPower(ctx, d, opts.Guest, true, log)
	default:
		if err := e.setPower(ctx, d, opts.Guest, false, log); err != nil {
			return err
		}
		return e.setPower(ctx, d, opts.Guest, true, log)
	}
}

// setPower brings one guest to running or stopped and records it.
func (e *Engine) setPower(ctx context.Context, d api.Deployment, name string, running bool, log actlog.Log) error {
	e.impMu.Lock()
	defer e.impMu.Unlock()
	lg, err := e.recordedGuest(ctx, d, name)
	if err != nil {
		return err
	}
	ps, err := guest.As[guest.PowerSwitch](lg.drv)
	if err != nil {
		return lg.unsupported(err)
	}
	l, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return err
	}
	mark := func(stopped bool) error {
		l.edit(func(r *Record) {
			h := r.host(lg.g.Host)
			gr := h.Guests[name]
			gr.Stopped = stopped
			h.Guests[name] = gr
		})
		return l.save(ctx)
	}
	if !running {
		// Recorded first: a crash half-way leaves a guest that restore
		// does not start behind the user's back.
		if err := mark(true); err != nil {
			return err
		}
		log.Printf("guest %s: stopping (%s)", name, lg.g.Kind)
		if err := ps.Stop(ctx, lg.gdep, &lg.g, log); err != nil {
			return errors.Join(fmt.Errorf("guest %s: stop: %w", name, err), mark(lg.rec.Stopped))
		}
		log.Printf("guest %s: stopped", name)
		return nil
	}
	log.Printf("guest %s: starting (%s)", name, lg.g.Kind)
	found, err := guest.Find(ctx, lg.drv, lg.gdep, &lg.g)
	if err != nil {
		return fmt.Errorf("guest %s: %w", name, err)
	}
	if found.Presence == guest.Absent {
		// Gone while stopped (its host rebooted, say): made again as up
		// makes a guest, without its setup scripts.
		log.Printf("guest %s: nothing of it is there any more: making it again", name)
		if _, err := lg.drv.Create(ctx, lg.gdep, &lg.g, log); err != nil {
			return fmt.Errorf("guest %s: make again: %w", name, err)
		}
	} else if err := ps.Start(ctx, lg.gdep, &lg.g, log); err != nil {
		return fmt.Errorf("guest %s: start: %w", name, err)
	}
	if imps, err := impairGuest(ctx, lg.host, lg.rec, &lg.g); err != nil {
		return err
	} else if imps != "" {
		log.Printf("guest %s: impaired %s", name, imps)
	}
	if err := mark(false); err != nil {
		return err
	}
	log.Printf("guest %s: running", name)
	return nil
}
