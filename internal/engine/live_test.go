package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/net/impair"
)

// linkWorld is world with link operations: it records what was set on
// which host-side link.
type linkWorld struct {
	*world
	lmu  sync.Mutex
	set  []string // "link: impairment up"
	down map[string]bool
}

func (l *linkWorld) Impair(ctx context.Context, link string, imp impair.Impairment, up bool) error {
	l.lmu.Lock()
	defer l.lmu.Unlock()
	l.set = append(l.set, fmt.Sprintf("%s: %+v %v", link, imp, up))
	l.down[link] = !up
	return nil
}

func (l *linkWorld) LinkUp(ctx context.Context, link string) (bool, error) {
	l.lmu.Lock()
	defer l.lmu.Unlock()
	return !l.down[link], nil
}

func (l *linkWorld) Capture(ctx context.Context, link string, f capture.Filter, w io.Writer) error {
	_, err := w.Write([]byte(link))
	return err
}

func (l *linkWorld) calls() []string {
	l.lmu.Lock()
	defer l.lmu.Unlock()
	return append([]string(nil), l.set...)
}

const impairedTopo = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.1, netem: {delay_ms: 20, loss_pct: 1}}]
  - name: b
    network: [{switch: sw0, ip: 10.0.0.2}, {switch: sw0, ip: 10.0.0.3}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

func liveSetup(t *testing.T, links bool) (*Engine, *linkWorld, api.Deployment) {
	t.Helper()
	w := &linkWorld{world: newWorld(), down: map[string]bool{}}
	var net Network = w.world
	if links {
		net = w
	}
	e, d := generatedEngine(t, "lab", impairedTopo, nil, Options{Drivers: guest.NewRegistry(w.world), Network: net, Concurrency: 2})
	return e, w, d
}

func TestLiveImpairments(t *testing.T) {
	e, w, d := liveSetup(t, true)
	ctx := context.Background()
	if _, err := e.GetImpairment(ctx, d, "a", "eth0"); !errors.Is(err, api.ErrConflict) {
		t.Errorf("before up: %v, want a conflict", err)
	}
	log := &guesttest.Log{}
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatal(err)
	}
	d.State = api.StateIsUp
	if !strings.Contains(log.Text(), "guest a: impaired eth0 delay 20ms loss 1% (yaml)") || strings.Contains(log.Text(), "guest b: impaired") {
		t.Errorf("up log:\n%s", log.Text())
	}
	st, _ := e.readState(d)
	aLink, bLink := st.Guests[0].Interfaces[0].HostName, st.Guests[1].Interfaces[1].HostName
	if got := w.calls(); len(got) != 1 || !strings.HasPrefix(got[0], aLink+": {DelayMS:20 JitterMS:0 LossPct:1 ") || !strings.HasSuffix(got[0], " true") {
		t.Errorf("links set at up: %v", got)
	}

	for _, c := range []struct{ guest, iface string }{{"nope", "eth0"}, {"a", "eth7"}} {
		if _, err := e.GetImpairment(ctx, d, c.guest, c.iface); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("%s %s: %v, want not found", c.guest, c.iface, err)
		}
	}
	if _, err := e.SetImpairment(ctx, d, "b", "eth1", api.Impairment{Up: true, JitterMS: 3}); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "jitter_ms") {
		t.Errorf("jitter without delay: %v", err)
	}
	got, err := e.SetImpairment(ctx, d, "b", "eth1", api.Impairment{Up: false, DelayMS: 10})
	if err != nil || got.Source != "runtime" || got.HostLink != bLink {
		t.Fatalf("set: %+v, %v", got, err)
	}
	imp, err := e.GetImpairment(ctx, d, "b", "eth1")
	if err != nil || imp.Up || imp.DelayMS != 10 || imp.Source != "runtime" {
		t.Errorf("get after set: %+v, %v", imp, err)
	}
	if imp, _ := e.GetImpairment(ctx, d, "a", "eth0"); imp.Source != "yaml" || imp.DelayMS != 20 || !imp.Up {
		t.Errorf("a eth0: %+v", imp)
	}
	rec, err := e.RecordedImpairments(ctx, d.Name)
	if err != nil || len(rec) != 1 || rec["b"]["eth1"] != (api.Impairment{Up: false, DelayMS: 10}) {
		t.Errorf("recorded: %v, %v", rec, err)
	}

	// Re-made guests get the recorded setting again, the YAML's where none.
	before := len(w.calls())
	log = &guesttest.Log{}
	if err := e.Up(ctx, d, api.UpOptions{Provision: true}, log); err != nil {
		t.Fatal(err)
	}
	again := strings.Join(w.calls()[before:], "\n")
	if !strings.Contains(again, bLink+": {DelayMS:10 ") || !strings.Contains(again, aLink+": {DelayMS:20 ") || !strings.Contains(log.Text(), "guest b: impaired eth1 delay 10ms, link down (runtime)") {
		t.Errorf("after provision: %s\n%s", again, log.Text())
	}
	if rec, _ := e.RecordedImpairments(ctx, d.Name); len(rec["b"]) != 1 {
		t.Errorf("provision lost the record: %v", rec)
	}

	// apply's reset: every link back to the YAML, up.
	before = len(w.calls())
	if err := resetImpairments(ctx, &LocalHost{HostName: "localhost", Net: w}, &st.Guests[1]); err != nil {
		t.Fatal(err)
	}
	reset := w.calls()[before:]
	if len(reset) != 2 || !strings.HasSuffix(reset[1], bLink+": {DelayMS:0 JitterMS:0 LossPct:0 RateKbit:0 CorruptPct:0} true") {
		t.Errorf("reset: %v", reset)
	}

	// Capture goes to the host-side link.
	var buf strings.Builder
	if err := e.Capture(ctx, d, "b", "eth1", nil, &buf); err != nil || buf.String() != bLink {
		t.Errorf("capture: %q, %v", buf.String(), err)
	}
	// world has no exec.
	if _, err := e.Exec(ctx, d, "a", guest.Command{Argv: []string{"true"}}); !errors.Is(err, guest.ErrUnsupported) {
		t.Errorf("exec on a driver without it: %v", err)
	}

	// down forgets it all; a deployment said up but with nothing recorded
	// reaches nothing.
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GetImpairment(ctx, d, "a", "eth0"); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "not recorded") {
		t.Errorf("after down: %v", err)
	}
	if rec, _ := e.RecordedImpairments(ctx, d.Name); len(rec) != 0 {
		t.Errorf("after down: %v", rec)
	}
}

// A host whose network has no link operations says so, and an up that
// needs them fails saying so.
func TestLiveWithoutLinkOps(t *testing.T) {
	e, _, d := liveSetup(t, false)
	ctx := context.Background()
	err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{})
	if !errors.Is(err, ErrNoLinkOps) || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "guest a:") {
		t.Fatalf("up with netem on a host without link operations: %v", err)
	}
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(strings.Replace(impairedTopo, ", netem: {delay_ms: 20, loss_pct: 1}", "", 1)), 0o644)
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	d.State = api.StateIsUp
	if _, err := e.SetImpairment(ctx, d, "a", "eth0", api.Impairment{Up: false}); !errors.Is(err, ErrNoLinkOps) || !errors.Is(err, ErrUnsupported) {
		t.Errorf("set without link operations: %v", err)
	}
}
