package engine

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/net/impair"
)

// TestRemadeDynamicGuestKeepsRuntimeImpairment: an up that makes a
// missing guest with ip: dynamic again (a restore) sets its run-time
// impairment again and keeps it in the record next to the new lease.
func TestRemadeDynamicGuestKeepsRuntimeImpairment(t *testing.T) {
	_, w, d := setupRouted(t)
	lw := &routedLinkWorld{routedWorld: w, links: map[string]impair.Impairment{}}
	e := New(Options{Drivers: guest.NewRegistry(w.world), Network: lw, Concurrency: 2})
	ctx := context.Background()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	want := api.Impairment{Up: true, DelayMS: 30}
	setRuntime(t, e, d, "b", want)
	// b goes missing (a reboot, a container removed by hand).
	w.mu.Lock()
	delete(w.guests, "b")
	w.mu.Unlock()
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range rec.Hosts {
		if gr, ok := h.Guests["b"]; ok {
			if gr.Impairments["eth0"] != want || gr.Leases["eth0"] == "" {
				t.Fatalf("b's record after it was made again: impairments %v, leases %v", gr.Impairments, gr.Leases)
			}
			return
		}
	}
	t.Fatal("no record of b")
}

// routedLinkWorld is a routed world whose links can be impaired.
type routedLinkWorld struct {
	*routedWorld
	mu    sync.Mutex
	links map[string]impair.Impairment
}

func (l *routedLinkWorld) Impair(ctx context.Context, link string, imp impair.Impairment, up bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.links[link] = imp
	return nil
}

func (l *routedLinkWorld) LinkUp(ctx context.Context, link string) (bool, error) { return true, nil }

func (l *routedLinkWorld) Capture(ctx context.Context, link string, filter capture.Filter, w io.Writer) error {
	return nil
}
