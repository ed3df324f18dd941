package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Down works from the daemon's record: the project's artefacts may be gone.
func TestDownWithoutArtefacts(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(d.ProjectLocation, "artefacts")); err != nil {
		t.Fatal(err)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatalf("down without artefacts: %v", err)
	}
	w.empty(t)
	// Nothing recorded any more: generate-artefacts is allowed again.
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdGenerateArtefacts}); err != nil {
		t.Fatalf("generate after down: %v", err)
	}
}

// An edited state.json can neither make up act on foreign names nor make
// down delete what the deployment did not make.
func TestEditedStateIsRefused(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	path := e.statePath(d.Name)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "evil.sh")
	os.WriteFile(outside, []byte("#!/bin/sh\n"), 0o755)
	inside := filepath.Join(d.ProjectLocation, "link.sh")
	os.Symlink(outside, inside)
	for name, edit := range map[string]func(st *topology.State){
		"foreign bridge":     func(st *topology.State) { st.Switches[0].Bridge = "docker0" },
		"foreign namespace":  func(st *topology.State) { st.Guests[0].Netns.Namespace = "prod" },
		"foreign host end":   func(st *topology.State) { st.Guests[0].Interfaces[0].HostName = "eth0" },
		"script outside":     func(st *topology.State) { st.Guests[0].SetupScript = outside },
		"script via symlink": func(st *topology.State) { st.Guests[0].SetupScript = inside },
		"other deployment":   func(st *topology.State) { st.Deployment = "other" },
	} {
		var st topology.State
		json.Unmarshal(orig, &st)
		edit(&st)
		if err := topology.WriteState(path, &st); err != nil {
			t.Fatal(err)
		}
		err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{})
		if !errors.Is(err, ErrConflict) || !errors.Is(err, topology.ErrStateMismatch) {
			t.Errorf("%s: up = %v, want a state mismatch", name, err)
		}
		if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdUp}); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: Check(up) = %v, want ErrConflict", name, err)
		}
		w.empty(t)
	}

	// Up with the real state, then edit it: down removes what the record
	// holds and nothing the edited state names.
	os.WriteFile(path, orig, 0o644)
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.bridges["docker0"], w.guests["prod"] = true, true
	w.mu.Unlock()
	var st topology.State
	json.Unmarshal(orig, &st)
	st.Switches[0].Bridge, st.Guests[0].Name = "docker0", "prod"
	topology.WriteState(path, &st)
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	b, _, g := w.snapshot()
	if strings.Join(b, ",") != "docker0" || strings.Join(g, ",") != "prod" {
		t.Fatalf("after down: bridges %v, guests %v; want only the foreign docker0 and prod", b, g)
	}
}

// A guest that exists but is not in the record was not made by this
// deployment: up refuses it and leaves it alone.
func TestForeignGuestIsNotAdopted(t *testing.T) {
	e, w, d := setup(t)
	w.mu.Lock()
	w.guests["b"] = true
	w.mu.Unlock()
	log := &guesttest.Log{}
	err := e.Up(context.Background(), d, api.UpOptions{}, log)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "did not make") {
		t.Fatalf("up over a foreign guest: %v", err)
	}
	_, _, g := w.snapshot()
	if strings.Join(g, ",") != "b" {
		t.Fatalf("guests after the refused up: %v, want the foreign b alone", g)
	}
	if err := e.Down(context.Background(), d, log); err != nil {
		t.Fatal(err)
	}
	if _, _, g := w.snapshot(); strings.Join(g, ",") != "b" {
		t.Fatalf("down removed a guest it did not make: %v", g)
	}
}

// restarter is a driver whose guests can be shut off: Create of a recorded,
// shut-off guest starts it again and reports it did not make it.
type restarter struct {
	*world
	stopped map[string]bool
}

func (r *restarter) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.guests[g.Name] && !r.stopped[g.Name], nil
}

func (r *restarter) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	r.mu.Lock()
	if r.stopped[g.Name] {
		delete(r.stopped, g.Name)
		r.mu.Unlock()
		return false, nil
	}
	r.mu.Unlock()
	return r.world.Create(ctx, dep, g, log)
}

// A failed up reverts only what it made: a guest it merely started again
// (libvirt's shut-off domain) keeps its disk.
func TestRevertSparesRestartedGuests(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(topo), 0o644)
	os.WriteFile(filepath.Join(dir, "s.sh"), []byte("#!/bin/sh\n"), 0o755)
	w := newWorld()
	r := &restarter{world: w, stopped: map[string]bool{}}
	e := New(Options{Drivers: guest.NewRegistry(r), Network: w, Concurrency: 1})
	d := api.Deployment{Name: "lab", ProjectLocation: dir}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	// a is shut off; c is gone and cannot be made again.
	r.mu.Lock()
	r.stopped["a"] = true
	delete(w.guests, "c")
	r.mu.Unlock()
	w.failOn = "c"
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err == nil {
		t.Fatal("up with a failing guest succeeded")
	}
	if _, _, g := w.snapshot(); strings.Join(g, ",") != "a,b" {
		t.Fatalf("after the failed up: guests %v, want a (restarted, not made) and b kept", g)
	}
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	if guests, _ := rec.counts(); guests != 2 {
		t.Fatalf("record holds %d guests after the revert, want 2 (a, b): %+v", guests, rec)
	}
	w.failOn = ""
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
}

// Records are written before objects are made: a crash after a create
// leaves a record that down can finish from.
func TestRecordWrittenBeforeCreate(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	w.block = make(chan struct{}) // scripts wait: the guests are made
	errc := make(chan error, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- e.Up(cctx, d, api.UpOptions{}, &guesttest.Log{}) }()
	for {
		w.mu.Lock()
		n := len(w.scripts)
		w.mu.Unlock()
		if n > 0 {
			break
		}
	}
	// The "crash": a second engine over the same records, as after a
	// restart, brings the deployment down.
	e2 := New(Options{Drivers: guest.NewRegistry(w), Network: w, Records: e.opts.Records})
	if err := e2.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
	close(w.block)
	<-errc
}

// TestRevertForgetsUnstartedGuests: guests recorded as pending whose
// creation never started (the first failure stops the stage) leave the
// record with the revert, so nothing is shown as deployed.
func TestRevertForgetsUnstartedGuests(t *testing.T) {
	_, w, d := setup(t)
	e := New(Options{Drivers: guest.NewRegistry(w), Network: w, Concurrency: 1})
	w.failOn = "a" // first of a, b, c, one at a time: b and c never start
	if err := e.Up(context.Background(), d, api.UpOptions{}, &guesttest.Log{}); err == nil {
		t.Fatal("up succeeded")
	}
	w.empty(t)
	rec, err := e.Deployed(context.Background(), d.Name)
	if err != nil {
		t.Fatal(err)
	}
	if g, b := rec.counts(); g+b > 0 {
		t.Fatalf("after the revert the record holds %d guests, %d bridges: %+v", g, b, rec.Hosts)
	}
}
