package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// The action timeline runs the time line of kvm-compose.yaml (as
// generate-artefacts resolved it) on an up deployment: each change at its
// planned time from the action's start, on a monotonic schedule (each
// wait is time.Until of start + at, never a sum of sleeps, so drift does
// not add up over many changes). Impairments and link changes are set as
// SetImpairment sets them and power changes go through setPower, so each
// is recorded as a run-time change is (impairments by a recorder that
// writes behind the schedule). A change that fails is logged and the time line
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
	start := time.Now()
	log.Printf("timeline: %d changes in %d rounds over %s, from %s", len(plan), t.Rounds(), plan[len(plan)-1].Offset, start.UTC().Format(time.RFC3339Nano))
	rec := e.newTimelineRecorder(d)
	// The log is written beside the schedule, so that a slow write of it
	// never holds a change back.
	lines, logged := make(chan string, len(plan)), make(chan struct{})
	go func() {
		defer close(logged)
		for l := range lines {
			log.Printf("%s", l)
		}
	}()
	drifts, failed, err := RunSchedule(ctx, start, plan, func(ctx context.Context, c TimedChange) error {
		return e.applyStep(ctx, d, c.Step, rec, log)
	}, func(c TimedChange, actual time.Duration, took time.Duration, err error) {
		res := "done"
		if err != nil {
			res = "FAILED: " + err.Error()
		}
		lines <- fmt.Sprintf("timeline: [%d] planned +%.3fs actual +%.3fs (drift %+d ms): %s: %s in %d ms",
			c.Round, c.Offset.Seconds(), actual.Seconds(), (actual - c.Offset).Milliseconds(), c.Step.Describe(), res, took.Milliseconds())
	})
	close(lines)
	<-logged
	if rerr := rec.close(ctx); rerr != nil {
		err = errors.Join(err, fmt.Errorf("timeline: record the changes: %w", rerr))
	}
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

// RunSchedule makes each change at start + its offset and reports each through done with its actual time and how long it took.
// It returns the drift of every change made (actual − planned), how many
// failed, and ctx's error when it was cancelled.
func RunSchedule(ctx context.Context, start time.Time, plan []TimedChange, apply func(context.Context, TimedChange) error,
	done func(c TimedChange, actual, took time.Duration, err error)) (drifts []time.Duration, failed int, err error) {
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
func (e *Engine) applyStep(ctx context.Context, d api.Deployment, s topology.TimelineStep, rec *timelineRecorder, log actlog.Log) error {
	if s.State != "" {
		// Power changes record themselves; what is queued goes first.
		if err := rec.flush(ctx); err != nil {
			return err
		}
		delete(rec.guests, s.Guest)
		return e.setPower(ctx, d, s.Guest, s.State == api.PowerRunning, log)
	}
	// Without impMu, which the recorder holds while it writes, and with
	// the guest looked up once (until a power change of it): a change
	// never waits for a write. A PUT of the same interface while a time
	// line runs races with it; the last one wins.
	lg := rec.guests[s.Guest]
	if lg == nil {
		var err error
		if lg, err = e.liveGuest(ctx, d, s.Guest); err != nil {
			return err
		}
		rec.guests[s.Guest] = lg
	}
	ifc, err := lg.iface(s.Interface)
	if err != nil {
		return err
	}
	ops, err := lg.linkOps()
	if err != nil {
		return err
	}
	// What this run set last, which the record may not hold yet.
	key := s.Guest + "/" + s.Interface
	imp, ok := rec.set[key]
	if !ok {
		imp, _ = effectiveImpairment(lg.rec, ifc)
	}
	if n := s.Netem; n != nil {
		imp.DelayMS, imp.JitterMS, imp.LossPct, imp.RateKbit, imp.CorruptPct = n.DelayMS, n.JitterMS, n.LossPct, n.RateKbit, n.CorruptPct
	}
	if s.Link != "" {
		imp.Up = s.Link == "up"
	}
	if err := ops.Impair(ctx, ifc.HostName, linkImpairment(imp), imp.Up); err != nil {
		return fmt.Errorf("guest %s: %w", s.Guest, err)
	}
	rec.set[key] = imp
	host, guestName, iface := lg.g.Host, s.Guest, s.Interface
	rec.queue(func(r *Record) {
		h := r.host(host)
		gr, ok := h.Guests[guestName]
		if !ok {
			return
		}
		if gr.Impairments == nil {
			gr.Impairments = map[string]api.Impairment{}
		}
		gr.Impairments[iface] = imp
		h.Guests[guestName] = gr
	})
	return nil
}

// timelineRecorder writes the impairments a time line sets into the
// deployment's record behind it, so that a slow write (a store that syncs
// to disk) never holds a change back from its planned time: changes are
// made on time and recorded in order, many in one write, and all of them
// before the action ends (a crash in between loses the record of the last
// few).
type timelineRecorder struct {
	e   *Engine
	dep api.Deployment
	// set is what the run set last per guest/interface, and guests the
	// guests it looked up (only applyStep, in turn, uses them).
	set    map[string]api.Impairment
	guests map[string]*liveGuest

	mu      sync.Mutex
	pending []func(*Record)
	kick    chan struct{}
	done    chan struct{}
	err     error
}

func (e *Engine) newTimelineRecorder(d api.Deployment) *timelineRecorder {
	r := &timelineRecorder{e: e, dep: d, set: map[string]api.Impairment{}, guests: map[string]*liveGuest{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go r.loop()
	return r
}

func (r *timelineRecorder) queue(edit func(*Record)) {
	r.mu.Lock()
	r.pending = append(r.pending, edit)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *timelineRecorder) loop() {
	defer close(r.done)
	for range r.kick {
		if err := r.flush(context.Background()); err != nil {
			r.mu.Lock()
			r.err = errors.Join(r.err, err)
			r.mu.Unlock()
		}
	}
}

// flush writes every queued edit in one write.
func (r *timelineRecorder) flush(ctx context.Context) error {
	r.e.impMu.Lock()
	defer r.e.impMu.Unlock()
	r.mu.Lock()
	edits := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(edits) == 0 {
		return nil
	}
	l, err := openLedger(ctx, r.e.opts.Records, r.dep.Name, r.dep.ProjectLocation)
	if err != nil {
		return err
	}
	l.edit(func(rec *Record) {
		for _, edit := range edits {
			edit(rec)
		}
	})
	return l.save(ctx)
}

// close writes what is still queued and returns the first write error.
func (r *timelineRecorder) close(ctx context.Context) error {
	close(r.kick)
	<-r.done
	err := r.flush(context.WithoutCancel(ctx))
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.err, err)
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
