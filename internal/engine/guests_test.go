package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
)

func TestGuestsStatus(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	statuses := func() map[string]string {
		t.Helper()
		list, err := e.Guests(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, g := range list {
			out[g.Name] = g.Status
			if g.Kind == "" || g.Host == "" || len(g.Interfaces) == 0 || g.Interfaces[0].IP == "" {
				t.Errorf("guest %+v lacks kind, host or interfaces", g)
			}
		}
		return out
	}
	want := func(got map[string]string, a, b, c string) {
		t.Helper()
		if got["a"] != a || got["b"] != b || got["c"] != c {
			t.Errorf("statuses %v, want a %s, b %s, c %s", got, a, b, c)
		}
	}
	want(statuses(), api.GuestAbsent, api.GuestAbsent, api.GuestAbsent)

	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	want(statuses(), api.GuestRunning, api.GuestRunning, api.GuestRunning)
	// Gone behind the engine's back: recorded, but not there.
	w.mu.Lock()
	delete(w.guests, "b")
	w.mu.Unlock()
	want(statuses(), api.GuestRunning, api.GuestStopped, api.GuestRunning)

	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	want(statuses(), api.GuestAbsent, api.GuestAbsent, api.GuestAbsent)

	if _, err := e.Guests(ctx, api.Deployment{Name: "new", ProjectLocation: t.TempDir()}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("guests without state: %v, want not found", err)
	}
}

// TestGuestsCarryImpairments: a run-time impairment recorded for an
// interface is on that interface of the guests list, and on no other.
func TestGuestsCarryImpairments(t *testing.T) {
	ifcs := []api.GuestInterface{{Name: "eth0"}, {Name: "eth1"}}
	withImpairments(ifcs, map[string]api.Impairment{"eth1": {Up: false, DelayMS: 5}})
	if ifcs[0].Impairment != nil || ifcs[1].Impairment == nil || ifcs[1].Impairment.Up || ifcs[1].Impairment.DelayMS != 5 {
		t.Errorf("interfaces: %+v %+v", ifcs[0].Impairment, ifcs[1].Impairment)
	}
}
