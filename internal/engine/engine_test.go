package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// world is a hand-written fake of the host: which bridges, firewall rules
// and guests exist.
type world struct {
	mu       sync.Mutex
	bridges  map[string]bool
	allowed  map[string]bool
	guests   map[string]bool
	scripts  []string
	ran      []string // the scripts' file names, in order
	failOn   string   // guest whose Create fails
	made     []string // guests Create made, in order
	scriptRC map[string]error
	block    chan struct{} // when set, RunScript waits on it or ctx
}

func newWorld() *world {
	return &world{bridges: map[string]bool{}, allowed: map[string]bool{}, guests: map[string]bool{}, scriptRC: map[string]error{}}
}

func (w *world) EnsureBridge(ctx context.Context, name string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	created := !w.bridges[name]
	w.bridges[name] = true
	return created, nil
}
func (w *world) HasBridge(ctx context.Context, name string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bridges[name], nil
}
func (w *world) DeleteBridge(ctx context.Context, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.bridges, name)
	return nil
}
func (w *world) AllowBridge(ctx context.Context, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.allowed[name] = true
	return nil
}
func (w *world) RemoveBridge(ctx context.Context, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.allowed, name)
	return nil
}

func (w *world) Kind() string                     { return topology.KindNetns }
func (w *world) Capabilities() guest.Capabilities { return guest.Capabilities{} }
func (w *world) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.guests[g.Name], nil
}
func (w *world) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	if g.Name == w.failOn {
		return false, fmt.Errorf("guest %s: no room", g.Name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.guests[g.Name] = true
	w.made = append(w.made, g.Name)
	return true, nil
}
func (w *world) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, script string, log actlog.Log) error {
	w.mu.Lock()
	w.scripts = append(w.scripts, g.Name)
	w.ran = append(w.ran, filepath.Base(script))
	block := w.block
	err := w.scriptRC[g.Name]
	w.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}
func (w *world) Destroy(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.guests, g.Name)
	return nil
}

func (w *world) snapshot() (bridges, allowed, guests []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return keys(w.bridges), keys(w.allowed), keys(w.guests)
}

func (w *world) empty(t *testing.T) {
	t.Helper()
	b, a, g := w.snapshot()
	if len(b)+len(a)+len(g) > 0 {
		t.Fatalf("left behind: bridges %v, rules %v, guests %v", b, a, g)
	}
}

const topo = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.1}]
    netns: {setup_script: s.sh}
  - name: b
    network: [{switch: sw0, ip: 10.0.0.2}, {switch: sw1, ip: 10.0.1.2}]
  - name: c
    network: [{switch: sw1, ip: 10.0.1.3}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
    unused: {subnet: 10.0.2.0/24}
`

// generatedEngine writes a project of yaml and files (executable), makes
// an engine of opts, and generates the artefacts of deployment name of
// the project: where the engine's tests start.
func generatedEngine(t *testing.T, name, yaml string, files map[string]string, opts Options) (*Engine, api.Deployment) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, body := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := New(opts)
	d := api.Deployment{Name: name, ProjectLocation: dir}
	if err := e.GenerateArtefacts(context.Background(), d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	return e, d
}

// shellScript is an empty setup script.
var shellScript = map[string]string{"s.sh": "#!/bin/sh\n"}

func setup(t *testing.T) (*Engine, *world, api.Deployment) {
	t.Helper()
	w := newWorld()
	e, d := generatedEngine(t, "lab", topo, shellScript, Options{Drivers: guest.NewRegistry(w), Network: w, Concurrency: 2})
	return e, w, d
}

func TestUpDownRoundTrip(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	log := &guesttest.Log{}
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatal(err)
	}
	b, a, g := w.snapshot()
	if len(b) != 2 || len(a) != 2 || strings.Join(g, ",") != "a,b,c" {
		t.Fatalf("after up: bridges %v (unused switch must not get one), rules %v, guests %v", b, a, g)
	}
	if len(w.scripts) != 1 || w.scripts[0] != "a" {
		t.Fatalf("scripts ran on %v", w.scripts)
	}
	for _, stage := range []string{"[1/6] init", "[2/6] hosts", "[3/6] network", "[4/6] guests", "[5/6] setup", "[6/6] end"} {
		if !strings.Contains(log.Text(), stage) {
			t.Errorf("log lacks stage %s", stage)
		}
	}
	// Idempotent: a second up keeps everything and runs no script again...
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if len(w.scripts) != 1 {
		t.Fatalf("second up re-ran scripts: %v", w.scripts)
	}
	// ...unless asked to.
	if err := e.Up(ctx, d, api.UpOptions{RerunScripts: true}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if len(w.scripts) != 2 {
		t.Fatalf("rerun_scripts did not re-run: %v", w.scripts)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatalf("second down: %v", err)
	}
}

func TestFailedGuestRevertsEverything(t *testing.T) {
	e, w, d := setup(t)
	w.failOn = "c"
	log := &guesttest.Log{}
	err := e.Up(context.Background(), d, api.UpOptions{}, log)
	if err == nil || !strings.Contains(err.Error(), "guest c") {
		t.Fatalf("err = %v", err)
	}
	w.empty(t)
	if !strings.Contains(log.Text(), "reverted") {
		t.Fatalf("log does not say it reverted:\n%s", log.Text())
	}
	// A guest that came up is not removed without a word.
	for _, g := range w.made {
		if !strings.Contains(log.Text(), "guest "+g+": was up and ready, removed because this run failed") {
			t.Errorf("log does not say why guest %s, which came up, was removed:\n%s", g, log.Text())
		}
	}
}

func TestRevertKeepsWhatExistedBefore(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.failOn = "b"
	if err := e.Up(ctx, d, api.UpOptions{Provision: true}, &guesttest.Log{}); err == nil {
		t.Fatal("provision with a failing guest succeeded")
	}
	b, _, _ := w.snapshot()
	if len(b) != 2 {
		t.Fatalf("revert removed bridges that the failed up did not make: %v", b)
	}
}

func TestFailingScriptKeepsGuests(t *testing.T) {
	e, w, d := setup(t)
	w.scriptRC["a"] = errors.New("exit status 3")
	err := e.Up(context.Background(), d, api.UpOptions{}, &guesttest.Log{})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v", err)
	}
	if _, _, g := w.snapshot(); len(g) != 3 {
		t.Fatalf("guests after a failing script: %v, want all 3 kept", g)
	}
}

func TestCancelDuringScriptsReverts(t *testing.T) {
	e, w, d := setup(t)
	w.block = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}) }()
	for {
		w.mu.Lock()
		n := len(w.scripts)
		w.mu.Unlock()
		if n > 0 {
			break
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	w.empty(t)
}

func TestCheck(t *testing.T) {
	e, _, d := setup(t)
	ctx := context.Background()
	check := func(cmd api.CommandName, want error) {
		t.Helper()
		err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: cmd})
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", cmd, err, want)
		}
	}
	check(api.CmdUp, nil)
	check(api.CmdDown, nil)
	check(api.CmdGenerateArtefacts, nil)
	// While the record holds objects, the artefacts stay as they are,
	// whatever the deployment's state says.
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	check(api.CmdGenerateArtefacts, ErrConflict)
	check(api.CmdClearArtefacts, ErrConflict)
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	check(api.CmdGenerateArtefacts, nil)
	check(api.CmdClearArtefacts, nil)
	os.Remove(e.statePath(d.Name))
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdUp}); !errors.Is(err, ErrConflict) {
		t.Errorf("up without artefacts: %v", err)
	}
	os.Remove(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"))
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdGenerateArtefacts}); !errors.Is(err, ErrConflict) {
		t.Errorf("generate without kvm-compose.yaml: %v, want ErrConflict", err)
	}
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte("machines: [{name: x, nope: 1}]\n"), 0o644)
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdGenerateArtefacts}); !errors.Is(err, topology.ErrInvalid) {
		t.Errorf("bad yaml: %v", err)
	}
}

func TestForEach(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	running, peak := 0, 0
	err := forEach(ctx, 3, 50, false, func(ctx context.Context, i int) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		if i%10 == 0 {
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if peak > 3 {
		t.Fatalf("peak concurrency %d > 3", peak)
	}
	if err == nil || strings.Count(err.Error(), "item") != 5 {
		t.Fatalf("collect-all err = %v, want 5 errors", err)
	}
	ran := 0
	err = forEach(ctx, 1, 50, true, func(ctx context.Context, i int) error {
		ran++
		return errors.New("first")
	})
	if err == nil || ran != 1 {
		t.Fatalf("fail-fast ran %d items, err %v", ran, err)
	}
}
