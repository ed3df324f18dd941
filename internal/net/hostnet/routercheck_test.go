package hostnet

import (
	"context"
	"slices"
	"testing"

	"github.com/testbedos/testbedos/internal/net/bridge"
)

// TestRouterMissingAndRepair: a router whose bridge is deleted and made
// again has a port off its bridge; RouterMissing names it and EnsureRouter
// makes the router again. A router without its DHCP server is reported,
// and EnsureRouter serves it again.
func TestRouterMissingAndRepair(t *testing.T) {
	lab := newRouterLab(t)
	ctx := context.Background()
	r := lab.router
	if m, err := lab.h.RouterMissing(ctx, r); err != nil || len(m) != 0 {
		t.Fatalf("RouterMissing of a whole router = %v, %v", m, err)
	}
	lab.h.dhcp.Stop(r.Namespace)
	if m, _ := lab.h.RouterMissing(ctx, r); !slices.Equal(m, []string{"dhcp on switch s1"}) {
		t.Fatalf("RouterMissing without DHCP = %v", m)
	}
	if created, err := lab.h.EnsureRouter(ctx, r); err != nil || created {
		t.Fatalf("EnsureRouter of a router without DHCP = %v, %v; want served, not re-made", created, err)
	}
	if err := bridge.Delete(ctx, lab.bridges[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.h.EnsureBridge(ctx, lab.bridges[0]); err != nil {
		t.Fatal(err)
	}
	m, err := lab.h.RouterMissing(ctx, r)
	if err != nil || !slices.Equal(m, []string{"port " + r.Ports[0].HostName + " on bridge " + lab.bridges[0]}) {
		t.Fatalf("RouterMissing with a bridge made again = %v, %v", m, err)
	}
	created, err := lab.h.EnsureRouter(ctx, r)
	if err != nil || !created {
		t.Fatalf("EnsureRouter of a broken router = %v, %v; want it made again", created, err)
	}
	if m, err := lab.h.RouterMissing(ctx, r); err != nil || len(m) != 0 {
		t.Fatalf("RouterMissing after the repair = %v, %v", m, err)
	}
	if err := lab.h.DeleteRouter(ctx, r); err != nil {
		t.Fatal(err)
	}
	if m, _ := lab.h.RouterMissing(ctx, r); !slices.Equal(m, []string{"namespace " + r.Namespace}) {
		t.Fatalf("RouterMissing of a removed router = %v", m)
	}
}
