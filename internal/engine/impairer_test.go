package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
)

// setRuntime records a run-time impairment on guest name's eth0, as
// SetImpairment does.
func setRuntime(t *testing.T, e *Engine, d api.Deployment, name string, imp api.Impairment) {
	t.Helper()
	ctx := context.Background()
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		t.Fatal(err)
	}
	led.edit(func(r *Record) {
		for _, h := range r.Hosts {
			if gr, ok := h.Guests[name]; ok {
				gr.Impairments = map[string]api.Impairment{"eth0": imp}
				h.Guests[name] = gr
			}
		}
	})
	if err := led.save(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPlanShowsRuntimeImpairments: a recorded run-time impairment that
// differs from kvm-compose.yaml is an impair change; one equal to the YAML
// is none; apply sets the link back to the YAML and drops the record.
func TestPlanShowsRuntimeImpairments(t *testing.T) {
	e, _, d := setup(t)
	imp := &fakeImpairer{}
	e.opts.Impairer = imp
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	setRuntime(t, e, d, "b", api.Impairment{Up: true}) // what the YAML says
	if p, err := e.Plan(ctx, d); err != nil || !p.Empty() {
		t.Fatalf("plan with a run-time setting equal to the YAML: %v, %v", changes(p), err)
	}
	setRuntime(t, e, d, "b", api.Impairment{Up: false, DelayMS: 100})
	p, err := e.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Op != api.OpImpair || p.Changes[0].Name != "b" ||
		p.Changes[0].Why != "eth0: runtime delay 100ms, link down → yaml none" {
		t.Fatalf("plan: %+v", p.Changes)
	}
	log := &guesttest.Log{}
	if err := e.Apply(ctx, d, log); err != nil {
		t.Fatalf("apply: %v\n%s", err, log.Text())
	}
	if strings.Join(imp.set, ",") != "b/eth0: cleared" {
		t.Errorf("impairments set: %v", imp.set)
	}
	rt, err := e.RecordedImpairments(ctx, d.Name)
	if err != nil || len(rt) != 0 {
		t.Errorf("run-time settings after apply: %v, %v", rt, err)
	}
	if p, err := e.Plan(ctx, d); err != nil || !p.Empty() {
		t.Fatalf("plan after apply: %v, %v", changes(p), err)
	}
	// Without an Impairer, run-time settings are not shown (nothing
	// could set them back in place).
	setRuntime(t, e, d, "b", api.Impairment{Up: true, DelayMS: 7})
	e.opts.Impairer = nil
	if p, err := e.Plan(ctx, d); err != nil || !p.Empty() {
		t.Fatalf("plan without an impairer: %v, %v", changes(p), err)
	}
}
