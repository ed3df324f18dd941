package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

const monitoredPair = `machines:
  - name: web
    network:
      - switch: sw0
        ip: 10.0.0.10
    netns:
      setup_script: burn.sh
  - name: client1
    network:
      - switch: sw0
        ip: 10.0.0.21
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// burn.sh leaves a process behind that burns a little CPU, then sleeps
// until down kills it.
const burnScript = "#!/bin/sh\n(i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 600) >/dev/null 2>&1 &\necho burning\n"

// TestMonitorNetnsGuests: after up, the guests route says running and has
// resources, the setup script's process is in the guest's cgroup and its
// CPU shows, ping traffic makes the interface counters grow, /metrics has
// the guests' series; after down they are gone and the guests absent.
func TestMonitorNetnsGuests(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t, "TESTBEDOS_MONITOR_INTERVAL=200ms")
	lab := generated(t, s, "mon", monitoredPair, map[string]string{"burn.sh": burnScript})
	name, st := lab.name, lab.st
	mustSucceed(t, s, name, cmd(api.CmdUp))
	hc := socketClient(s)

	web := waitGuest(t, hc, name, "web", func(g api.Guest) bool {
		return g.Status == api.GuestRunning && g.Resources != nil && g.Resources.CPUSeconds != nil && *g.Resources.CPUSeconds > 0.05
	})
	t.Logf("web after up: %+v", *web.Resources)
	if web.Host == "" || len(web.Interfaces) != 1 || web.Interfaces[0].IP != "10.0.0.10/24" || web.Interfaces[0].Switch != "sw0" {
		t.Errorf("web: %+v", web)
	}
	if web.Resources.MemoryBytes == nil || *web.Resources.MemoryBytes == 0 {
		t.Errorf("web uses no memory: %+v", *web.Resources)
	}
	cg := guestCgroup(t, name, "web")
	procs, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
	if err != nil || len(strings.Fields(string(procs))) == 0 {
		t.Errorf("cgroup %s holds no process of the setup script: %q, %v", cg, procs, err)
	}

	// Traffic: client1 pings web; web's counters (seen from web) grow.
	ip, _, _ := net.ParseCIDR(st.Guests[0].Interfaces[0].Address)
	for range 3 {
		if err := nettest.Ping(st.Guests[1].Netns.Namespace, ip, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	before := *web.Resources
	after := waitGuest(t, hc, name, "web", func(g api.Guest) bool {
		return g.Resources != nil && g.Resources.RxBytes > before.RxBytes && g.Resources.TxBytes > before.TxBytes
	})
	t.Logf("web after pings: rx %d → %d, tx %d → %d", before.RxBytes, after.Resources.RxBytes, before.TxBytes, after.Resources.TxBytes)

	var series api.GuestSeries
	getJSON(t, hc, "/api/monitor/deployments/"+name+"/guests/web", &series)
	if len(series.Samples) < 2 || series.IntervalS != 0.2 {
		t.Errorf("web's series: %d samples every %v s", len(series.Samples), series.IntervalS)
	}

	metrics := get(t, hc, "/metrics")
	for _, want := range []string{
		`testbedos_guest_cpu_seconds_total{deployment="` + name + `",guest="web"}`,
		`testbedos_guest_memory_bytes{deployment="` + name + `",guest="client1"}`,
		`testbedos_guest_network_receive_bytes_total{deployment="` + name + `",guest="web",interface="eth0"}`,
		`testbedos_guest_network_transmit_bytes_total{deployment="` + name + `",guest="client1",interface="eth0"}`,
		"testbedos_host_cpu_seconds_total ",
		"testbedos_host_memory_bytes ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	mustSucceed(t, s, name, cmd(api.CmdDown))
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(get(t, hc, "/metrics"), `deployment="`+name+`"`) {
		if time.Now().After(deadline) {
			t.Fatal("/metrics still has the guests' series 10 s after down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var guests []api.Guest
	getJSON(t, hc, "/api/deployments/"+name+"/guests", &guests)
	for _, g := range guests {
		if g.Status != api.GuestAbsent || g.Resources != nil {
			t.Errorf("after down: %+v", g)
		}
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("cgroup %s after down: %v", cg, err)
	}
	assertNothingLeft(t, st)
}

// guestCgroup is the netns guest's cgroup on this machine's cgroup2
// hierarchy (pure v2, or the unified mount of a hybrid machine).
func guestCgroup(t *testing.T, deployment, guest string) string {
	t.Helper()
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
			return filepath.Join(root, "testbedos", deployment, guest)
		}
	}
	t.Fatal("no cgroup2 hierarchy")
	return ""
}

func socketClient(s *server) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", s.socket)
	}}}
}

func get(t *testing.T, hc *http.Client, path string) string {
	t.Helper()
	resp, err := hc.Get("http://unix" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}

func getJSON(t *testing.T, hc *http.Client, path string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, hc, path)), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// waitGuest polls the guests route until ok holds for the guest.
func waitGuest(t *testing.T, hc *http.Client, deployment, guest string, ok func(api.Guest) bool) api.Guest {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last api.Guest
	for time.Now().Before(deadline) {
		var guests []api.Guest
		getJSON(t, hc, "/api/deployments/"+deployment+"/guests", &guests)
		for _, g := range guests {
			if g.Name == guest {
				last = g
				if ok(g) {
					return g
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, _ := json.Marshal(last)
	t.Fatalf("guest %s never got there: %s", guest, data)
	return last
}
