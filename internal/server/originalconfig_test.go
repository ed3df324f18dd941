package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
)

// originalHostJSON is a host.json in the original's shape: no name, cpus
// or memory_mb, its ssh fields and an ovn section with a provider network
// of its own besides public.
const originalHostJSON = `{
  "ip": "127.0.0.1",
  "testbed_nic": "lo",
  "main_interface": "lo",
  "is_main_host": true,
  "ovn": {
    "chassis_name": "lab-main",
    "bridge": "br-int",
    "encap_type": "geneve",
    "encap_ip": "127.0.0.1",
    "remote": "unix:/run/ovn/ovnsb_db.sock",
    "bridge_mappings": [["public", "br-ex", "172.16.1.1/24"], ["lab", "br-lab", "172.18.0.1/24"]]
  }
}`

// TestOriginalHostJSONStartsServer: the server starts with the original's
// host.json, fills what it leaves out from the machine, keeps its ovn
// section, and takes the original's kvm-compose-config.json at POST
// /api/config/cluster.
func TestOriginalHostJSONStartsServer(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Server{
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", DB: "file", Auth: false,
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	if err := os.MkdirAll(cfg.ConfigDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.HostPath(), []byte(originalHostJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatalf("server does not start with the original's host.json: %v", err)
	}
	e := &env{srv: s, ts: newTestHTTP(t, s)}
	code, body := e.call(t, http.MethodGet, "/api/config/host", "")
	var h api.HostConfig
	if code != 200 || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("GET host: %d %s", code, body)
	}
	if h.Name == "" || h.CPUs < 1 || h.MemoryMB < 1 {
		t.Errorf("host %+v: name, cpus and memory_mb should come from the machine", h)
	}
	if h.OVN == nil || h.OVN.ChassisName != "lab-main" || h.OVN.Remote == "" {
		t.Fatalf("ovn section not kept: %+v", h.OVN)
	}
	if got := h.ProviderNetworks()["lab"]; got.Bridge != "br-lab" || got.Gateway != "172.18.0.1/24" {
		t.Errorf("provider network lab = %+v", got)
	}
	var raw struct {
		OVN struct {
			BridgeMappings [][]string `json:"bridge_mappings"`
		} `json:"ovn"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.OVN.BridgeMappings) != 2 || strings.Join(raw.OVN.BridgeMappings[0], " ") != "public br-ex 172.16.1.1/24" {
		t.Errorf("bridge mappings not in the original's array form: %v %s", err, body)
	}

	for _, tc := range []struct{ name, body string }{
		{"ip", `{"testbed_host_ssh_config": {"lab-main": {"ip": "127.0.0.1", "user": "lab", "identity_file": "/root/.ssh/id", "testbed_nic": "lo", "main_interface": "lo", "is_main_host": true}},
		  "ssh_public_key_location": "/root/.ssh/k.pub", "ssh_private_key_location": "/root/.ssh/k"}`},
		{"older hostname", `{"testbed_host_ssh_config": {"lab-main": {"hostname": "127.0.0.1", "user": "lab", "identity_file": "/root/.ssh/id", "testbed_nic": "lo", "is_main_host": true}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.call(t, http.MethodPost, "/api/config/cluster", tc.body)
			if code != 200 {
				t.Fatalf("POST the original's kvm-compose-config.json: %d %s", code, body)
			}
			var cc api.ClusterConfig
			if err := json.Unmarshal([]byte(body), &cc); err != nil || len(cc.Hosts) != 1 || cc.Hosts[0].Name != "lab-main" || cc.Hosts[0].CPUs < 1 {
				t.Errorf("cluster config %s", body)
			}
		})
	}
	if code, msg := e.call(t, http.MethodPost, "/api/config/cluster", `{"testbed_host_ssh_config": {"stranger": {"ip": "127.0.0.9", "testbed_nic": "lo"}, "lab-main": {"ip": "127.0.0.1", "testbed_nic": "lo", "is_main_host": true}}}`); code != 422 || !strings.Contains(msg, "stranger") {
		t.Errorf("a host that never joined: %d %s, want 422 naming it", code, msg)
	}
}
