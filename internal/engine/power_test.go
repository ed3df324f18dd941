package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// powerWorld is world whose guests can be stopped: a stopped guest is not
// there for Exists, like a stopped container or domain.
type powerWorld struct{ *world }

func (p powerWorld) Capabilities() guest.Capabilities { return guest.Capabilities{Power: true} }
func (p powerWorld) Stop(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	return p.Destroy(ctx, dep, g, log)
}
func (p powerWorld) Start(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	_, err := p.Create(ctx, dep, g, log)
	return err
}

const timelineTopo = impairedTopo + `timeline:
  repeat: 2
  period: 200ms
  changes:
    - {at: 50ms, guest: a, interface: eth0, link: down}
    - {at: 100ms, guest: a, interface: eth0, link: up}
    - {at: 150ms, guest: b, state: stopped}
`

func powerSetup(t *testing.T) (*Engine, *linkWorld, api.Deployment) {
	t.Helper()
	w := &linkWorld{world: newWorld(), down: map[string]bool{}}
	e, d := generatedEngine(t, "lab", timelineTopo, nil, Options{Drivers: guest.NewRegistry(powerWorld{w.world}), Network: w, Concurrency: 2})
	d.State = api.StateIsUp
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	return e, w, d
}

func guestStatus(t *testing.T, e *Engine, d api.Deployment, name string) string {
	t.Helper()
	gs, err := e.Guests(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.Name == name {
			return g.Status
		}
	}
	t.Fatalf("no guest %s", name)
	return ""
}

// A stopped guest is recorded stopped: listed stopped, not missing, left
// stopped by up, refused by exec, and running again after a start.
func TestPowerIsRecordedAndRespected(t *testing.T) {
	e, w, d := powerSetup(t)
	ctx := context.Background()
	if err := e.Check(ctx, d, api.StateIsUp, api.Command{Name: api.CmdPower, Power: api.PowerOptions{Guest: "b", State: "stopped"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdPower, Power: api.PowerOptions{Guest: "b", State: "stopped"}}); err == nil {
		t.Error("power of a deployment that is down was accepted")
	}
	if err := e.Power(ctx, d, api.PowerOptions{Guest: "b", State: api.PowerStopped}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if _, _, guests := w.snapshot(); strings.Join(guests, ",") != "a" {
		t.Fatalf("guests after stop: %v", guests)
	}
	if s := guestStatus(t, e, d, "b"); s != api.GuestStopped {
		t.Errorf("status of the stopped guest: %s", s)
	}
	if m, err := e.Missing(ctx, d); err != nil || len(m) != 0 {
		t.Errorf("missing after a stop: %v %v", m, err)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if _, _, guests := w.snapshot(); strings.Join(guests, ",") != "a" {
		t.Errorf("up started the stopped guest: %v", guests)
	}
	if _, err := e.Exec(ctx, d, "b", guest.Command{Argv: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("exec in a stopped guest: %v", err)
	}
	if err := e.Power(ctx, d, api.PowerOptions{Guest: "b", State: api.PowerRunning}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if s := guestStatus(t, e, d, "b"); s != api.GuestRunning {
		t.Errorf("status after start: %s", s)
	}
	if err := e.Power(ctx, d, api.PowerOptions{Guest: "b", State: api.PowerRestarted}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if s := guestStatus(t, e, d, "b"); s != api.GuestRunning {
		t.Errorf("status after restart: %s", s)
	}
	// A stopped guest that is gone when started (its host rebooted) is
	// made again.
	if err := e.Power(ctx, d, api.PowerOptions{Guest: "b", State: api.PowerStopped}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	log := &guesttest.Log{}
	if err := e.Power(ctx, d, api.PowerOptions{Guest: "b", State: api.PowerRunning}, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.Text(), "making it again") || guestStatus(t, e, d, "b") != api.GuestRunning {
		t.Errorf("start of a vanished guest:\n%s", log.Text())
	}
}

// The time line runs every change at its planned time (monotonic
// schedule), records them, and plan shows it.
func TestTimelineRunsOnSchedule(t *testing.T) {
	e, w, d := powerSetup(t)
	ctx := context.Background()
	if err := e.Check(ctx, d, api.StateIsUp, api.Command{Name: api.CmdTimeline}); err != nil {
		t.Fatal(err)
	}
	log := &guesttest.Log{}
	start := time.Now()
	if err := e.Timeline(ctx, d, api.TimelineOptions{}, log); err != nil {
		t.Fatalf("%v\n%s", err, log.Text())
	}
	// Never sooner than planned; later only as a loaded machine makes it.
	if took := time.Since(start); took < 350*time.Millisecond || took > 10*time.Second {
		t.Errorf("timeline took %v, want about 350 ms", took)
	}
	text := log.Text()
	if n := strings.Count(text, "planned +"); n != 6 {
		t.Errorf("%d changes logged, want 6:\n%s", n, text)
	}
	if !strings.Contains(text, "planned +0.250s") || !strings.Contains(text, "drift p50") {
		t.Errorf("log lacks the second round or the drift summary:\n%s", text)
	}
	var downs int
	for _, c := range w.calls() {
		if strings.HasSuffix(c, " false") {
			downs++
		}
	}
	if downs != 2 {
		t.Errorf("link set down %d times, want 2: %v", downs, w.calls())
	}
	if s := guestStatus(t, e, d, "b"); s != api.GuestStopped {
		t.Errorf("b after the timeline: %s", s)
	}
	imps, _ := e.RecordedImpairments(ctx, "lab")
	if imp, ok := imps["a"]["eth0"]; !ok || !imp.Up || imp.DelayMS != 20 {
		t.Errorf("recorded impairment of a: %+v", imps)
	}
	p, err := e.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if p.Timeline == nil || len(p.Timeline.Changes) != 3 || p.Timeline.Repeat != 2 || p.Timeline.Changes[0].What != "a eth0 link down" {
		t.Errorf("plan's timeline: %+v", p.Timeline)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.Timeline(cctx, d, api.TimelineOptions{}, &guesttest.Log{}); err == nil {
		t.Error("a cancelled timeline succeeded")
	}
}

func TestTimelineValidation(t *testing.T) {
	for _, tc := range []struct{ tl, want string }{
		{"  - {at: 1s, guest: nobody, state: stopped}", `timeline.changes[0].guest "nobody" is not a guest`},
		{"  - {at: 1s, guest: a, link: down}", "timeline.changes[0].interface is required"},
		{"  - {at: soon, guest: a, state: stopped}", "timeline.changes[0].at"},
		{"  - {at: 1s, guest: a, interface: eth0, link: sideways}", "want up or down"},
		{"  - {at: 1s, guest: a, interface: eth0, link: down, state: stopped}", "exactly one of"},
		{"  - {at: 1s, guest: a, interface: eth9, netem: {delay_ms: 5}}", "guest a has no interface eth9"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(impairedTopo+"timeline:\n"+tc.tl+"\n"), 0o644)
		_, err := topology.Generate(topology.Options{Deployment: "lab", ProjectDir: dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "kvm-compose.yaml:10:") {
			t.Errorf("%s: got %v, want kvm-compose.yaml:10: …%s", tc.tl, err, tc.want)
		}
	}
}

// Drift does not accumulate over 100 changes on a monotonic schedule:
// each change takes 5 ms of a 10 ms period, so a schedule that slept the
// period after each change would be 5 ms later at every step (250 ms at
// the median, 500 ms at the end). The bound leaves room for a loaded
// machine's scheduling delays without letting accumulation through.
func TestRunScheduleDrift(t *testing.T) {
	var plan []TimedChange
	for i := range 100 {
		plan = append(plan, TimedChange{Offset: time.Duration(i) * 10 * time.Millisecond})
	}
	drifts, failed, err := RunSchedule(context.Background(), time.Now(), plan, func(context.Context, TimedChange) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	}, nil)
	if err != nil || failed != 0 || len(drifts) != 100 {
		t.Fatal(err, failed, len(drifts))
	}
	p50, p99, _ := DriftStats(drifts)
	t.Logf("drift p50 %v, p99 %v", p50, p99)
	if p50 > 100*time.Millisecond {
		t.Errorf("median drift %v: the schedule accumulates the changes' own time", p50)
	}
}
