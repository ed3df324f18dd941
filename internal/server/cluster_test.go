package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// Over TLS a member proves its certificate: the join and the membership
// check take the member's secret only from the certificate it pinned.
func TestClusterDoorsOverTLS(t *testing.T) {
	s, url := serveTLS(t)
	raw, err := os.ReadFile(s.cfg.ClusterTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	clusterToken := strings.TrimSpace(string(raw))
	member, err := tlsid.LoadOrCreate(t.TempDir(), tlsid.DefaultNames("c1", nil))
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsid.LoadOrCreate(t.TempDir(), tlsid.DefaultNames("c2", nil))
	if err != nil {
		t.Fatal(err)
	}
	httpsAs := func(id *tlsid.Identity) *http.Client {
		var own *tls.Certificate
		if id != nil {
			own = &id.Certificate
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsid.ClientConfig(s.identity.Fingerprint, own)}}
	}
	do := func(c *http.Client, method, path, bearer string, body any) (int, []byte) {
		t.Helper()
		var buf bytes.Buffer
		if body != nil {
			json.NewEncoder(&buf).Encode(body)
		}
		req, _ := http.NewRequest(method, url+path, &buf)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}
	join := api.JoinRequest{
		Name: "c1", Fingerprint: member.Fingerprint, URL: "https://127.0.0.2:1",
		Host: api.HostConfig{Name: "c1", IP: "127.0.0.2", TestbedNIC: "lo", CPUs: 1, MemoryMB: 64},
	}
	if code, body := do(httpsAs(nil), "POST", "/api/cluster", clusterToken, join); code != 400 {
		t.Errorf("join without a client certificate: %d %s", code, body)
	}
	if code, body := do(httpsAs(&other), "POST", "/api/cluster", clusterToken, join); code != 400 {
		t.Errorf("join with another certificate than named: %d %s", code, body)
	}
	if code, _ := do(httpsAs(&member), "POST", "/api/cluster", s.token, join); code != 401 {
		t.Errorf("join with the API token: %d, want 401", code)
	}
	code, body := do(httpsAs(&member), "POST", "/api/cluster", clusterToken, join)
	var ans api.JoinAnswer
	if code != 200 || json.Unmarshal(body, &ans) != nil || ans.Fingerprint != s.identity.Fingerprint {
		t.Fatalf("join: %d %s", code, body)
	}
	for _, tc := range []struct {
		name   string
		as     *tlsid.Identity
		bearer string
		want   int
	}{
		{"the member from its certificate", &member, ans.Secret, 200},
		{"the secret without a certificate", nil, ans.Secret, 401},
		{"the secret from another certificate", &other, ans.Secret, 401},
		{"the API token", nil, s.token, 200},
		{"the cluster token", &member, clusterToken, 401},
	} {
		if code, body := do(httpsAs(tc.as), "GET", "/api/cluster/c1", tc.bearer, nil); code != tc.want {
			t.Errorf("membership with %s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	for _, bearer := range []string{clusterToken, ans.Secret} {
		if code, _ := do(httpsAs(&member), "GET", "/api/deployments", bearer, nil); code != 401 {
			t.Errorf("deployments with a cluster credential: %d, want 401", code)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(s.cfg.ConfigDir(), "kvm-compose-config.json"))
	if err != nil || !strings.Contains(string(cfg), member.Fingerprint) {
		t.Errorf("the member's fingerprint is not pinned in kvm-compose-config.json: %v", err)
	}
}

// freePort is a loopback port nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A client-mode server joins at start, then serves only its agent API (the
// routes Options.Agent adds among them) behind the member secret and the
// main's certificate.
func TestClientModeServesOnlyTheAgentAPI(t *testing.T) {
	main, mainURL := serveTLS(t)
	raw, _ := os.ReadFile(main.cfg.ClusterTokenPath())
	addr := freePort(t)
	cfg := config.Server{
		Mode: config.ModeClient, DataDir: filepath.Join(t.TempDir(), "data"), Listen: addr, DB: "file", Auth: true,
		TLS: config.TLSOn, MainURL: mainURL, MainFingerprint: main.identity.Fingerprint, ClusterToken: strings.TrimSpace(string(raw)),
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	os.MkdirAll(cfg.ConfigDir(), 0o755)
	host, _ := json.Marshal(api.HostConfig{Name: "c1", IP: "127.0.0.1", TestbedNIC: "lo", CPUs: 1, MemoryMB: 64})
	os.WriteFile(cfg.HostPath(), host, 0o644)
	agent := http.NewServeMux()
	agent.HandleFunc("GET /api/agent/ping", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("pong")) })
	c, err := New(context.Background(), Options{Config: cfg, Executor: newGate(), Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	_, stop, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })

	if _, err := main.members.Member("c1"); err != nil {
		t.Fatalf("the client did not join at start: %v", err)
	}
	mode, err := cfg.LoadMode()
	if err != nil || mode.Mode != config.ModeClient || mode.Fingerprint != main.identity.Fingerprint {
		t.Errorf("saved mode %+v %v", mode, err)
	}
	secret := c.follower.State().Secret
	as := func(id *tlsid.Identity) *http.Client {
		var own *tls.Certificate
		if id != nil {
			own = &id.Certificate
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsid.ClientConfig(c.identity.Fingerprint, own)}}
	}
	get := func(hc *http.Client, path, bearer string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, path, bearer string
		as                 *tlsid.Identity
		want               int
	}{
		{"health from the main", "/api/agent/health", secret, &main.identity, 200},
		{"an added agent route", "/api/agent/ping", secret, &main.identity, 200},
		{"the secret without the main's certificate", "/api/agent/health", secret, nil, 401},
		{"the secret from the client's own certificate", "/api/agent/health", secret, &c.identity, 401},
		{"the main's API token", "/api/agent/health", main.token, &main.identity, 401},
		{"the main's API", "/api/deployments", c.token, nil, 404},
		{"its metrics without a token", "/metrics", "", nil, 401},
		{"its metrics with its token", "/metrics", c.token, nil, 200},
		{"its status with the member secret", "/api/config/status", secret, &main.identity, 401},
	} {
		if got := get(as(tc.as), tc.path, tc.bearer); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// The main's own heartbeat reaches it.
	if err := cluster.NewHealthChecker(&main.identity.Certificate).Check(context.Background(), mustMember(t, main, "c1"), secret); err != nil {
		t.Errorf("the main's heartbeat: %v", err)
	}
}

func mustMember(t *testing.T, s *Server, name string) api.Member {
	t.Helper()
	m, err := s.members.Member(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
