package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// changes writes a plan's changes as "op kind name[: why]", sorted as planned.
func changes(p api.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		s := string(c.Op) + " " + string(c.Kind) + " " + c.Name
		if c.Why != "" {
			s += ": " + c.Why
		}
		out = append(out, s)
	}
	return out
}

func unchanged(p api.Plan) []string {
	var out []string
	for _, o := range p.Unchanged {
		out = append(out, string(o.Kind)+" "+o.Name)
	}
	return out
}

// fakeImpairer records the impairments apply sets.
type fakeImpairer struct{ set []string }

func (f *fakeImpairer) Impair(ctx context.Context, host Host, dep guest.Deployment, g *topology.Guest, iface string, n *topology.Netem) error {
	f.set = append(f.set, g.Name+"/"+iface+": "+describeNetem(n))
	return nil
}

func TestPlanDiff(t *testing.T) {
	cases := []struct {
		name     string
		yaml     string // replaces topo after up
		impairer bool
		// netem is set on guest c's eth0 in the record after up, as a
		// run-time impairment is recorded.
		netem     *topology.Netem
		changes   []string
		unchanged []string
	}{
		{
			name:      "same yaml changes nothing",
			yaml:      topo,
			changes:   nil,
			unchanged: []string{"switch sw0", "switch sw1", "guest a", "guest b", "guest c"},
		},
		{
			name: "remove, add on a new switch, change an ip",
			yaml: `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.9}]
    netns: {setup_script: s.sh}
  - name: b
    network: [{switch: sw0, ip: 10.0.0.2}]
  - name: d
    network: [{switch: sw2, ip: 10.0.2.4}]
  - name: e
    network: [{switch: sw2, ip: 10.0.2.5}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw2: {subnet: 10.0.2.0/24}
`,
			changes: []string{
				"remove switch sw1",
				"remove guest c",
				"remake guest a: interfaces[0].address 10.0.0.1/24 → 10.0.0.9/24",
				// b lost its second interface, on the removed sw1.
				"remake guest b: interfaces[1] removed (eth1 on sw1)",
				"add switch sw2",
				"add guest d",
				"add guest e",
			},
			unchanged: []string{"switch sw0"},
		},
		{
			name:      "impairment only, with an impairer: in place",
			yaml:      topo,
			netem:     &topology.Netem{DelayMS: 20},
			impairer:  true,
			changes:   []string{"impair guest c: interfaces[0].netem {\"delay_ms\":20} → none"},
			unchanged: []string{"switch sw0", "switch sw1", "guest a", "guest b"},
		},
		{
			name:      "impairment only, without an impairer: re-made",
			yaml:      topo,
			netem:     &topology.Netem{DelayMS: 20},
			changes:   []string{"remake guest c: interfaces[0].netem {\"delay_ms\":20} → none"},
			unchanged: []string{"switch sw0", "switch sw1", "guest a", "guest b"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, w, d := setup(t)
			if tc.impairer {
				e.opts.Impairer = &fakeImpairer{}
			}
			ctx := context.Background()
			if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
				t.Fatal(err)
			}
			if tc.netem != nil {
				setNetem(t, e, d, "c", tc.netem)
			}
			os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(tc.yaml), 0o644)
			before := slices.Clone(w.scripts)
			p, err := e.Plan(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got := changes(p)
			if len(got) != len(tc.changes) {
				t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.changes, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.changes[i]) {
					t.Errorf("change %d: %q, want it to start %q", i, got[i], tc.changes[i])
				}
			}
			if u := unchanged(p); !slices.Equal(u, tc.unchanged) {
				t.Errorf("unchanged %v, want %v", u, tc.unchanged)
			}
			// Plan changes nothing.
			if !slices.Equal(w.scripts, before) {
				t.Errorf("plan ran scripts")
			}
		})
	}
}

func TestPlanRefusals(t *testing.T) {
	e, _, d := setup(t)
	ctx := context.Background()
	if _, err := e.Plan(ctx, d); !errors.Is(err, ErrConflict) {
		t.Fatalf("plan with nothing deployed: %v, want ErrConflict", err)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte("machines: [{name: a, network: [{switch: nope}]}]\n"), 0o644)
	var ve *topology.ValidationError
	if _, err := e.Plan(ctx, d); !errors.As(err, &ve) || len(ve.Problems) == 0 {
		t.Fatalf("plan of an invalid yaml: %v, want a ValidationError", err)
	}
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdApply}); !errors.Is(err, ErrConflict) {
		t.Fatalf("apply on a down deployment: %v, want ErrConflict", err)
	}
}

func TestApplyDoesThePlan(t *testing.T) {
	e, w, d := setup(t)
	imp := &fakeImpairer{}
	e.opts.Impairer = imp
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	yaml := `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.9}]
    netns: {setup_script: s.sh}
  - name: b
    network: [{switch: sw0, ip: 10.0.0.2}, {switch: sw1, ip: 10.0.1.2}]
  - name: d
    network: [{switch: sw2, ip: 10.0.2.4}]
    netns: {setup_script: s.sh}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
    sw2: {subnet: 10.0.2.0/24}
`
	setNetem(t, e, d, "b", &topology.Netem{DelayMS: 5})
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(yaml), 0o644)
	w.scripts = nil
	log := &guesttest.Log{}
	if err := e.Apply(ctx, d, log); err != nil {
		t.Fatalf("apply: %v\n%s", err, log.Text())
	}
	_, _, guests := w.snapshot()
	if strings.Join(guests, ",") != "a,b,d" {
		t.Fatalf("guests after apply %v", guests)
	}
	slices.Sort(w.scripts)
	if strings.Join(w.scripts, ",") != "a,d" {
		t.Errorf("scripts ran on %v, want the re-made a and the new d", w.scripts)
	}
	if len(imp.set) != 1 || !strings.HasPrefix(imp.set[0], "b/eth0: cleared") {
		t.Errorf("impairments set: %v", imp.set)
	}
	for _, want := range []string{"==> apply [1/", "remove guest c", "remake guest a", "add guest d", "impair guest b"} {
		if !strings.Contains(log.Text(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.Text())
		}
	}
	// The new state is written, and the plan is now empty.
	st, err := e.readState(d)
	if err != nil || len(st.Guests) != 3 {
		t.Fatalf("state after apply: %v, %v", st, err)
	}
	p, err := e.Plan(ctx, d)
	if err != nil || !p.Empty() {
		t.Fatalf("plan after apply: %v, %v", changes(p), err)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
}

func TestApplyFailureRevertsWhatItMade(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(topo, "network:\n  switches:", "  - name: x\n    network: [{switch: sw3, ip: 10.0.3.1}]\n  - name: y\n    network: [{switch: sw3, ip: 10.0.3.2}]\nnetwork:\n  switches:", 1)
	yaml = strings.Replace(yaml, "    unused:", "    sw3: {subnet: 10.0.3.0/24}\n    unused:", 1)
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(yaml), 0o644)
	w.failOn = "y"
	log := &guesttest.Log{}
	if err := e.Apply(ctx, d, log); err == nil {
		t.Fatalf("apply with a failing guest succeeded:\n%s", log.Text())
	}
	b, _, g := w.snapshot()
	if strings.Join(g, ",") != "a,b,c" || len(b) != 2 {
		t.Fatalf("after the failed apply: bridges %v guests %v, want what was there before", b, g)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
}

// setNetem records an impairment on guest name's eth0, as a run-time
// change is recorded.
func setNetem(t *testing.T, e *Engine, d api.Deployment, name string, n *topology.Netem) {
	t.Helper()
	ctx := context.Background()
	led, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		t.Fatal(err)
	}
	led.edit(func(r *Record) {
		for _, h := range r.Hosts {
			if gr, ok := h.Guests[name]; ok {
				gr.Guest.Interfaces = slices.Clone(gr.Guest.Interfaces)
				gr.Guest.Interfaces[0].Netem = n
				h.Guests[name] = gr
			}
		}
	})
	if err := led.save(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestApplyCancelledRevertsWhatItMade(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(topo, "network:\n  switches:", "  - name: x\n    network: [{switch: sw3, ip: 10.0.3.1}]\n    netns: {setup_script: s.sh}\nnetwork:\n  switches:", 1)
	yaml = strings.Replace(yaml, "    unused:", "    sw3: {subnet: 10.0.3.0/24}\n    unused:", 1)
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(yaml), 0o644)
	w.mu.Lock()
	w.block = make(chan struct{})
	w.scripts = nil
	w.mu.Unlock()
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	log := &guesttest.Log{}
	go func() { done <- e.Apply(actx, d, log) }()
	for {
		w.mu.Lock()
		started := len(w.scripts) > 0
		w.mu.Unlock()
		if started {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("apply ended before its script ran: %v\n%s", err, log.Text())
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled apply: %v", err)
	}
	b, _, g := w.snapshot()
	if strings.Join(g, ",") != "a,b,c" || len(b) != 2 {
		t.Fatalf("after the cancelled apply: bridges %v guests %v, want what was there before", b, g)
	}
	if !strings.Contains(log.Text(), "reverted: nothing this apply made is left") {
		t.Errorf("log:\n%s", log.Text())
	}
	rec, _ := e.Deployed(ctx, d.Name)
	if gs, bs := rec.counts(); gs != 3 || bs != 2 {
		t.Errorf("record after the cancelled apply holds %d guests, %d bridges", gs, bs)
	}
}

func TestMissingAfterAReboot(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if m, err := e.Missing(ctx, d); err != nil || len(m) != 0 {
		t.Fatalf("missing right after up: %v, %v", m, err)
	}
	st, _ := e.readState(d)
	w.mu.Lock()
	delete(w.guests, "b")
	delete(w.bridges, st.Switches[1].Bridge)
	w.mu.Unlock()
	m, err := e.Missing(ctx, d)
	want := []string{"bridge " + st.Switches[1].Bridge, "namespace " + guestOf(st, "b").Netns.Namespace}
	if err != nil || !slices.Equal(m, want) {
		t.Fatalf("missing %v, %v; want %v", m, err, want)
	}
	// up brings back what is missing and keeps the rest.
	w.mu.Lock()
	w.scripts = nil
	w.mu.Unlock()
	log := &guesttest.Log{}
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.Missing(ctx, d); len(m) != 0 || !strings.Contains(log.Text(), "guest a: already up") {
		t.Fatalf("after up: missing %v\n%s", m, log.Text())
	}
}

func guestOf(st *topology.State, name string) *topology.Guest {
	for i := range st.Guests {
		if st.Guests[i].Name == name {
			return &st.Guests[i]
		}
	}
	return nil
}
