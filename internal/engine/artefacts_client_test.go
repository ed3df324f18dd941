package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// artWorld is world's driver writing an artefact per guest.
type artWorld struct{ *world }

func (a artWorld) Capabilities() guest.Capabilities { return guest.Capabilities{Artefacts: true} }

func (a artWorld) WriteArtefacts(ctx context.Context, st *topology.State, g *topology.Guest, out *atomicfile.Root, log actlog.Log) error {
	dir := filepath.Join(g.Kind, g.Name)
	if err := out.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return out.Write(filepath.Join(dir, "domain.xml"), []byte("guest "+g.Name+" on "+g.Host), 0o644)
}

// mainAndClient is a main and a client host.
type mainAndClient struct{ main, client Host }

func (h mainAndClient) List() []topology.Host {
	return []topology.Host{{Name: h.main.Name(), Main: true}, {Name: h.client.Name()}}
}

func (h mainAndClient) Host(name string) (Host, error) {
	for _, x := range []Host{h.main, h.client} {
		if x.Name() == name {
			return x, nil
		}
	}
	return nil, fmt.Errorf("no host %s", name)
}

// TestArtefactsOfClientGuestsWrittenOnMain: a guest on a client host, whose
// driver (a proxy) writes no artefacts, gets them from the main's driver of
// its kind, in the main's generated folder, from where up pushes them.
func TestArtefactsOfClientGuestsWrittenOnMain(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(`machines:
  - {name: a, host: main, network: [{switch: sw0, ip: 10.0.0.1}]}
  - {name: b, host: c1, network: [{switch: sw0, ip: 10.0.0.2}]}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`), 0o644)
	w := newWorld()
	gen := t.TempDir()
	hosts := mainAndClient{
		main:   &LocalHost{HostName: "main", Net: w, Drivers: guest.NewRegistry(artWorld{w}), Generated: gen},
		client: &LocalHost{HostName: "c1", Net: w, Drivers: guest.NewRegistry(w)},
	}
	e := New(Options{Hosts: hosts, GeneratedDir: gen})
	if err := e.GenerateArtefacts(context.Background(), api.Deployment{Name: "lab", ProjectLocation: dir}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	for g, want := range map[string]string{"a": "guest a on main", "b": "guest b on c1"} {
		data, err := os.ReadFile(filepath.Join(gen, "lab", topology.KindNetns, g, "domain.xml"))
		if err != nil || string(data) != want {
			t.Errorf("artefact of %s: %q, %v; want %q", g, data, err, want)
		}
	}
}
