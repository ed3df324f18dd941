package gui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

const routed = `machines:
  - name: web
    network: [{switch: front, ip: 10.20.0.10}]
  - name: db
    network: [{switch: back, ip: 10.21.0.10}]
network:
  switches:
    front: {subnet: 10.20.0.0/24}
    back: {subnet: 10.21.0.0/24}
    out: {subnet: 10.22.0.0/24, external: true}
  routers:
    r1:
      ports:
        - {switch: front, gateway_ip: 10.20.0.1/24}
        - {switch: back, gateway_ip: 10.21.0.1/24}
        - {switch: out, gateway_ip: 10.22.0.2/24}
      nat: [{nat_type: snat, logical_ip: 10.20.0.0/16, external_ip: 10.22.0.2}]
`

func TestTopologyDrawsRoutersAndExternalSwitches(t *testing.T) {
	st := oneHost(t, "rt", routed)
	if len(st.Routers) != 1 {
		t.Fatalf("routers in the state: %+v", st.Routers)
	}
	svg := string(drawTopology(st))
	for _, want := range []string{
		`id="topo-router-r1"`, `snat 10.20.0.0/16 → 10.22.0.2`,
		`>10.20.0.1/24</text>`, `>10.21.0.1/24</text>`, `>10.22.0.2/24</text>`,
		`id="topo-external-out"`, `external: host 10.22.0.1/24`,
		`class="switch external" id="topo-switch-out"`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("topology lacks %s", want)
		}
	}
	if n := strings.Count(svg, `class="rlink"`); n != 3 {
		t.Errorf("%d router links drawn, want 3", n)
	}
}

// A router's ports to switches on lower shelves go around the blocks.
func TestTopologyRoutesRouterLinksAroundBlocks(t *testing.T) {
	src := bigTopology(200, 4) + "  routers:\n    r1:\n      ports:\n"
	for s := 0; s < 4; s++ {
		src += "        - {switch: sw" + string(rune('0'+s)) + ", gateway_ip: 10." + string(rune('0'+s)) + ".0.1/16}\n"
	}
	st := oneHost(t, "big", src)
	svg := string(drawTopology(st))
	if strings.Count(svg, `class="rlink"`) != 4 || !strings.Contains(svg, ` V`) {
		t.Errorf("router links: %d, routed: %v", strings.Count(svg, `class="rlink"`), strings.Contains(svg, " V"))
	}
}

// oneHost generates the state of src on a cluster of one host (routed
// switches must be on the main host).
func oneHost(t testing.TB, name, src string) *topology.State {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := topology.Generate(topology.Options{Deployment: name, ProjectDir: dir, Hosts: []topology.Host{{Name: "main", Main: true}}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A libvirt guest's snapshot option is marked; many guests' plots are lazy.
func TestDeploymentPageSnapshotsAndLazyPlots(t *testing.T) {
	ts, rec, _ := newTestGUI(t, Options{})
	rec.deps["vm"] = api.Deployment{Name: "vm", ProjectLocation: generated(t, "vm", "machines:\n  - name: v1\n    libvirt:\n      cpus: 1\n      memory_mb: 256\n      libvirt_type: {cloud_image: {url: 'https://example.org/a.img'}}\n    network: [{switch: sw0, ip: 10.0.0.10}]\nnetwork:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\n")}
	rec.deps["big"] = api.Deployment{Name: "big", ProjectLocation: generated(t, "big", bigTopology(200, 4))}
	if _, body := get(t, ts.URL+"/deployments/vm"); !strings.Contains(body, `data-snapshots="1">v1 (libvirt)`) {
		t.Errorf("the libvirt guest is not offered for snapshots:\n%s", body)
	}
	// The plots of 200 guests load only for the page of the table shown:
	// the server renders none with a src.
	if _, body := get(t, ts.URL+"/deployments/big"); strings.Count(body, `data-src="/api/monitor/deployments/big/guests/`) != 200 || strings.Contains(body, ` src="/api/monitor`) {
		t.Errorf("%d plots deferred of 200", strings.Count(body, `data-src="/api/monitor/deployments/big/guests/`))
	}
}

// BenchmarkTopology200Routed is the layout and SVG of 200 guests on 4
// switches joined by two routers.
func BenchmarkTopology200Routed(b *testing.B) {
	src := bigTopology(200, 4) + "  routers:\n    r1:\n      ports:\n        - {switch: sw0, gateway_ip: 10.0.0.1/16}\n        - {switch: sw1, gateway_ip: 10.1.0.1/16}\n    r2:\n      ports:\n        - {switch: sw2, gateway_ip: 10.2.0.1/16}\n        - {switch: sw3, gateway_ip: 10.3.0.1/16}\n        - {switch: sw1, gateway_ip: 10.1.0.2/16}\n"
	st := oneHost(b, "big", src)
	for b.Loop() {
		drawTopology(st)
	}
}
