package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// The action timeline runs the time line of kvm-compose.yaml (as
// generate-artefacts resolved it) on an up deployment: each change at its
// planned time from the action's start, on a monotonic schedule (each
// wait is time.Until of start + at, never a sum of sleeps, so drift does
// not add up over many changes). Impairments and link changes go through
// SetImpairment and power changes through setPower, so each is recorded
// as a run-time change is. A change that fails is logged and the time line
// goes on; the action fails at the end when any did. Cancelling the action
// stops it before its next change.

// ErrNoTimeline: the deployment's kvm-compose.yaml has no timeline.
var ErrNoTimeline = api.Categorized(api.ErrConflict, "no timeline")

// checkTimeline refuses a time line of a deployment that is not up or has
// none.
func (e *Engine) checkTimeline(d api.Deployment, prev api.DeploymentState) error {
	if !prev.Is(api.StateUp) {
		return fmt.Errorf("%w: deployment %s is %s, not up: run up first (or up --timeline)", ErrConflict, d.Name, prev.Kind)
	}
	st, err := e.readState(d)
	if err != nil {
		return err
	}
	if st.Timeline == nil || len(st.Timeline.Changes) == 0 {
		return fmt.Errorf("%w: deployment %s: kvm-compose.yaml has no timeline (add timeline: and run generate-artefacts)", ErrNoTimeline, d.Name)
	}
	return nil
}

// TimedChange is one change of a time line's run as planned.
type TimedChange struct {
	// Offset is the planned time from the start of the run.
	Offset time.Duration
	Round  int
	Step   topology.TimelineStep
}

// Schedule lists the changes of every round in the order they run.
func Schedule(t *topology.Timeline) []TimedChange {
	var out []TimedChange
	period := time.Duration(t.PeriodMS) * time.Millisecond
	for r := range t.Rounds() {
		for _, s := range t.Changes {
			out = append(out, TimedChange{Offset: time.Duration(r)*period + time.Duration(s.AtMS)*time.Millisecond, Round: r + 1, Step: s})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}

// Timeline runs the deployment's time line; opts.Repeat overrides the
// file's repeat.
func (e *Engine) Timeline(ctx context.Context, d api.Deployment, opts api.TimelineOptions, log actlog.Log) error {
	st, err := e.readState(d)
	if err != nil {
		return err
	}
	if st.Timeline == nil || len(st.Timeline.Changes) == 0 {
		return fmt.Errorf("%w: deployment %s: kvm-compose.yaml has no timeline", ErrNoTimeline, d.Name)
	}
	t := *st.Timeline
	if opts.Repeat > 0 {
		t.Repeat = opts.Repeat
	}
	plan := Schedule(&t)
	log.Printf("timeline: %d changes in %d rounds over %s", len(plan), t.Rounds(), plan[len(plan)-1].Offset)
	drifts, failed, err := RunSchedule(ctx, plan, func(ctx context.Context, c TimedChange) error {
		return e.applyStep(ctx, d, c.Step, log)
	}, func(c TimedChange, actual time.Duration, took time.Duration, err error) {
		res := "done"
		if err != nil {
			res = "FAILED: " + err.Error()
		}
		log.Printf("timeline: [%d] planned +%.3fs actual +%.3fs (drift %+d ms): %s: %s in %d ms",
			c.Round, c.Offset.Seconds(), actual.Seconds(), (actual - c.Offset).Milliseconds(), c.Step.Describe(), res, took.Milliseconds())
	})
	if len(drifts) > 0 {
		p50, p99, mx := DriftStats(drifts)
		log.Printf("timeline: %d changes made, drift p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(drifts), ms(p50), ms(p99), ms(mx))
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("timeline: %d of %d changes failed (see the log)", failed, len(plan))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RunSchedule makes each change at start + its offset, start being now,
// and reports each through done with its actual time and how long it took.
// It returns the drift of every change made (actual − planned), how many
// failed, and ctx's error when it was cancelled.
func RunSchedule(ctx context.Context, plan []TimedChange, apply func(context.Context, TimedChange) error,
	done func(c TimedChange, actual, took time.Duration, err error)) (drifts []time.Duration, failed int, err error) {
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for _, c := range plan {
		if wait := time.Until(start.Add(c.Offset)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return drifts, failed, context.Cause(ctx)
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			return drifts, failed, context.Cause(ctx)
		}
		actual := time.Since(start)
		aerr := apply(ctx, c)
		took := time.Since(start) - actual
		drifts = append(drifts, actual-c.Offset)
		if aerr != nil {
			if ctx.Err() != nil {
				return drifts, failed, errors.Join(context.Cause(ctx), aerr)
			}
			failed++
		}
		if done != nil {
			done(c, actual, took, aerr)
		}
	}
	return drifts, failed, nil
}

// DriftStats returns the median, 99th percentile and largest drift.
func DriftStats(drifts []time.Duration) (p50, p99, mx time.Duration) {
	s := append([]time.Duration(nil), drifts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.5), at(0.99), s[len(s)-1]
}

// applyStep makes one change of the time line.
func (e *Engine) applyStep(ctx context.Context, d api.Deployment, s topology.TimelineStep, log actlog.Log) error {
	if s.State != "" {
		return e.setPower(ctx, d, s.Guest, s.State == api.PowerRunning, log)
	}
	lg, err := e.liveGuest(ctx, d, s.Guest)
	if err != nil {
		return err
	}
	ifc, err := lg.iface(s.Interface)
	if err != nil {
		return err
	}
	imp, _ := effectiveImpairment(lg.rec, ifc)
	if n := s.Netem; n != nil {
		imp.DelayMS, imp.JitterMS, imp.LossPct, imp.RateKbit, imp.CorruptPct = n.DelayMS, n.JitterMS, n.LossPct, n.RateKbit, n.CorruptPct
	}
	if s.Link != "" {
		imp.Up = s.Link == "up"
	}
	_, err = e.SetImpairment(ctx, d, s.Guest, s.Interface, imp)
	return err
}

// planTimeline is the time line as plan shows it; nil for none.
func planTimeline(t *topology.Timeline) *api.PlanTimeline {
	if t == nil {
		return nil
	}
	out := &api.PlanTimeline{Repeat: t.Rounds(), PeriodMS: t.PeriodMS, Changes: []api.PlanTimedChange{}}
	for _, s := range t.Changes {
		out.Changes = append(out.Changes, api.PlanTimedChange{AtMS: s.AtMS, Guest: s.Guest, Interface: s.Interface, What: s.Describe()})
	}
	return out
}
