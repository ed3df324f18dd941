package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// providerLab is a lab whose switch public names the provider network
// public, as the original's labs do.
func providerLab(guest, lan string) string {
	return `machines:
  - name: ` + guest + `
    network: [{switch: lan, ip: ` + lan + `.10, gateway: ` + lan + `.1}]
network:
  ovn:
    switches:
      lan: {subnet: ` + lan + `.0/24}
      public:
        subnet: 172.16.1.0/24
        ports: [{name: ls-public, localnet: {network_name: public}}]
    routers:
      r:
        ports:
          - {name: r-lan, switch: lan, gateway_ip: ` + lan + `.1/24}
          - {name: r-public, switch: public, gateway_ip: 172.16.1.2` + lan[len(lan)-1:] + `/24}
`
}

// TestProviderNetworkShared: two deployments on the provider network share
// its bridge and host side; the first down keeps them, the last removes
// them; an external switch overlapping it is refused, naming a holder.
func TestProviderNetworkShared(t *testing.T) {
	ctx := context.Background()
	w := newRoutedWorld()
	e := New(Options{Drivers: guest.NewRegistry(w.world), Network: w, Concurrency: 2})
	deploy := func(name, yaml string) api.Deployment {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644)
		d := api.Deployment{Name: name, ProjectLocation: dir}
		if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := deploy("one", providerLab("g1", "10.1.0")), deploy("two", providerLab("g2", "10.2.0"))
	for _, d := range []api.Deployment{a, b} {
		if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
			t.Fatalf("up %s: %v", d.Name, err)
		}
	}
	bridge, table := topology.ProviderBridgeName("public"), topology.ProviderTable("public")
	if br, _, _ := w.snapshot(); !slices.Contains(br, bridge) || len(w.externals) != 1 || !w.externals[table] {
		t.Fatalf("bridges %v, externals %v: want one shared %s and %s", br, w.externals, bridge, table)
	}

	over := deploy("three", `machines:
  - name: o
    network: [{switch: lan, ip: 10.3.0.10}]
network:
  switches:
    lan: {subnet: 10.3.0.0/24}
    out: {subnet: 172.16.0.0/16, external: true}
`)
	err := e.Check(ctx, over, api.StateIsDown, api.Command{Name: api.CmdUp})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "of deployment one") {
		t.Errorf("overlapping external switch: %v, want a conflict naming deployment one", err)
	}

	log := &guesttest.Log{}
	if err := e.Down(ctx, a, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.Text(), "kept (deployment two uses it too)") {
		t.Errorf("down log:\n%s", log.Text())
	}
	if br, _, _ := w.snapshot(); !slices.Contains(br, bridge) || !w.externals[table] {
		t.Fatalf("the first down removed the shared network: bridges %v, externals %v", br, w.externals)
	}
	if err := e.Down(ctx, b, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
	if w.objects() != 0 {
		t.Fatalf("the last down left routers %v, externals %v", w.routers, w.externals)
	}
}
