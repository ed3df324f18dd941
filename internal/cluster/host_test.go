package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

func TestHostName(t *testing.T) {
	for in, want := range map[string]string{
		"lab1":              "lab1",
		"Lab-1.example.org": "lab-1",
		"my host":           "my-host",
		"":                  "host",
		"-x":                "x",
	} {
		if got := hostName(in); got != want || !api.ValidName(got) {
			t.Errorf("hostName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetectHostReadsRouteAndMemory(t *testing.T) {
	dir := t.TempDir()
	route := filepath.Join(dir, "route")
	os.WriteFile(route, []byte("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"+
		"nope0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"+
		"lo\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n"), 0o644)
	if got := defaultRouteInterface(route); got != "lo" {
		t.Errorf("default route interface %q, want lo", got)
	}
	mem := filepath.Join(dir, "meminfo")
	os.WriteFile(mem, []byte("MemTotal:        2048000 kB\nMemFree: 1 kB\n"), 0o644)
	if got := memoryMB(mem); got != 2000 {
		t.Errorf("memory %d MB, want 2000", got)
	}
	// A wildcard listen address takes the default route's interface (lo here).
	h := DetectHost(HostProbe{Hostname: "Lab1.example", Listen: "0.0.0.0:3355", Main: true, RouteFile: route, MeminfoFile: mem})
	if h.Name != "lab1" || h.IP != "127.0.0.1" || h.TestbedNIC != "lo" || !h.IsMainHost || h.MemoryMB != 2000 || h.CPUs < 1 {
		t.Errorf("detected %+v", h)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
	// A listen address on an interface names that interface.
	if h := DetectHost(HostProbe{Hostname: "x", Listen: "127.0.0.1:3355", RouteFile: filepath.Join(dir, "none")}); h.IP != "127.0.0.1" {
		t.Errorf("loopback listen without a default route: %+v", h)
	}
}

func TestLoadOrCreateHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.json")
	made := api.HostConfig{Name: "h1", IP: "10.0.0.1", TestbedNIC: "eth0", CPUs: 2, MemoryMB: 100}
	h, err := LoadOrCreateHost(path, true, func() api.HostConfig { return made })
	if err != nil || !h.IsMainHost {
		t.Fatalf("first start: %+v %v", h, err)
	}
	// A user's edit is kept; the mode decides is_main_host.
	edited := h
	edited.Name = "renamed"
	if err := SaveHost(path, edited); err != nil {
		t.Fatal(err)
	}
	h, err = LoadOrCreateHost(path, false, func() api.HostConfig { t.Fatal("detected again"); return made })
	if err != nil || h.Name != "renamed" || h.IsMainHost {
		t.Fatalf("second start as a client: %+v %v", h, err)
	}
	if saved, _ := LoadHost(path); saved.IsMainHost {
		t.Error("is_main_host not saved")
	}
	os.WriteFile(path, []byte(`{"name":"Bad"}`), 0o644)
	if _, err := LoadOrCreateHost(path, true, func() api.HostConfig { return made }); err == nil {
		t.Error("an invalid host.json was accepted")
	}
}
