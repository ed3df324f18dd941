package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// finder is a world whose driver tells whose objects are there.
type finder struct {
	*world
	found map[string]guest.Found
}

func (f *finder) Capabilities() guest.Capabilities { return guest.Capabilities{Find: true} }

var _ guest.Finder = (*finder)(nil)

func (f *finder) Find(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Found, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd, ok := f.found[g.Name]; ok {
		return fd, nil
	}
	if f.guests[g.Name] {
		return guest.Found{Presence: guest.Ours, What: "guest " + g.Name}, nil
	}
	return guest.Found{}, nil
}

// up adopts nothing another made: not a stopped or partial object the
// record does not hold, and not a foreign one in a recorded guest's place.
func TestUpRefusesForeignObjectsInAnyForm(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(topo), 0o644)
	os.WriteFile(filepath.Join(dir, "s.sh"), []byte("#!/bin/sh\n"), 0o755)
	w := newWorld()
	f := &finder{world: w, found: map[string]guest.Found{}}
	e := New(Options{Drivers: guest.NewRegistry(f), Network: w, GeneratedDir: t.TempDir()})
	d := api.Deployment{Name: "lab", ProjectLocation: dir}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	// Stopped, so Exists says no; unrecorded: not ours.
	f.found["b"] = guest.Found{Presence: guest.Unmarked, What: "stopped thing tb-b"}
	err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "stopped thing tb-b") {
		t.Fatalf("up over an unrecorded stopped object = %v, want a conflict naming it", err)
	}
	w.empty(t)

	delete(f.found, "b")
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	// b vanished and another server's object took its place.
	w.mu.Lock()
	delete(w.guests, "b")
	w.mu.Unlock()
	f.mu.Lock()
	f.found["b"] = guest.Found{Presence: guest.Foreign, What: "shut-off domain of another server"}
	f.mu.Unlock()
	err = e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "of another server") {
		t.Fatalf("up over a foreign object in a recorded guest's place = %v, want a conflict naming it", err)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
}
