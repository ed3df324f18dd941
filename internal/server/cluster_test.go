package server

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
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
