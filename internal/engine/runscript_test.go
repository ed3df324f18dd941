package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// vmWorld is the fake world serving libvirt guests.
type vmWorld struct{ *world }

func (vmWorld) Kind() string { return topology.KindLibvirt }

// A cloud image's run_script runs after its setup script at the first up,
// and alone at every later up (the setup script only with rerun_scripts).
func TestRunScriptAtEveryUp(t *testing.T) {
	dir := t.TempDir()
	yaml := `machines:
  - name: vm
    network: [{switch: sw0, ip: 10.0.0.10}]
    libvirt:
      cpus: 1
      memory_mb: 64
      libvirt_type:
        cloud_image: {url: "http://127.0.0.1:9/i.qcow2", setup_script: setup.sh, run_script: run.sh}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`
	for name, body := range map[string]string{"kvm-compose.yaml": yaml, "setup.sh": "#!/bin/sh\n", "run.sh": "#!/bin/sh\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := newWorld()
	e := New(Options{Drivers: guest.NewRegistry(w, vmWorld{w}), Network: w, Concurrency: 2})
	d := api.Deployment{Name: "lab", ProjectLocation: dir}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"setup.sh,run.sh", "setup.sh,run.sh,run.sh"} {
		if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(w.ran, ","); got != want {
			t.Errorf("after up %d: scripts %s, want %s", i+1, got, want)
		}
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
}
