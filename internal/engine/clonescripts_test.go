package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// scriptWorld records which script ran in which guest.
type scriptWorld struct {
	*world
	mu  sync.Mutex
	ran map[string][]string
}

func (w *scriptWorld) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, script string, log actlog.Log) error {
	w.mu.Lock()
	w.ran[g.Name] = append(w.ran[g.Name], filepath.Base(script))
	w.mu.Unlock()
	return w.world.RunScript(ctx, dep, g, script, log)
}

// TestCloneScriptsRunAfterSharedSetup: the original's scaling runs
// shared_setup on every clone, then the clone_setup and clone_run scripts
// that name the clone, in that order.
func TestCloneScriptsRunAfterSharedSetup(t *testing.T) {
	dir := t.TempDir()
	yaml := `machines:
  - name: s
    network: [{switch: sw0, ip: 10.0.0.10}]
    netns: {}
    scaling:
      count: 3
      shared_setup: shared.sh
      clone_setup: [{script: one.sh, clones: [0, 2]}]
      clone_run: [{script: run.sh, clones: [2]}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644)
	for _, f := range []string{"shared.sh", "one.sh", "run.sh"} {
		os.WriteFile(filepath.Join(dir, f), []byte("#!/bin/sh\n"), 0o755)
	}
	w := &scriptWorld{world: newWorld(), ran: map[string][]string{}}
	e := New(Options{Drivers: guest.NewRegistry(w), Network: w.world, Concurrency: 2})
	d := api.Deployment{Name: "lab", ProjectLocation: dir}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s-1": "shared.sh one.sh", "s-2": "shared.sh", "s-3": "shared.sh one.sh run.sh"}
	for g, scripts := range want {
		if got := strings.Join(w.ran[g], " "); got != scripts {
			t.Errorf("%s ran %q, want %q", g, got, scripts)
		}
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
}
