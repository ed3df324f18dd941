package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/client"
)

func TestTokenOverTCPNoneOverSocket(t *testing.T) {
	s := startServer(t)
	base := s.tcpURL(t)
	tokenPath := filepath.Join(s.dataDir, "config", "token")
	fi, err := os.Stat(tokenPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, fi.Mode())
	}
	data, _ := os.ReadFile(tokenPath)
	token := strings.TrimSpace(string(data))

	get := func(path, auth string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		path, auth string
		want       int
	}{
		{"/api/deployments", "", 401},
		{"/api/deployments", "Bearer wrong-token", 401},
		{"/api/deployments", "Bearer " + token[:len(token)-1], 401},
		{"/api/deployments", "Basic " + token, 401},
		{"/api/deployments", "Bearer " + token, 200},
		{"/metrics", "", 401},
		{"/api/logs/x/stream", "", 401},
		{"/healthz", "", 200},
	}
	for _, tc := range cases {
		if got := get(tc.path, tc.auth); got != tc.want {
			t.Errorf("GET %s with %q: %d, want %d", tc.path, tc.auth, got, tc.want)
		}
	}

	// The socket is the trusted door: no token, mode 0660.
	sfi, err := os.Stat(s.socket)
	if err != nil || sfi.Mode()&os.ModeSocket == 0 || sfi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %s: %v, mode %v; want a socket with 0660", s.socket, err, sfi.Mode())
	}
	if _, err := s.c.Deployments(context.Background()); err != nil {
		t.Fatalf("socket without token: %v", err)
	}
	// The Go client with the token over TCP.
	c, _ := client.New(base, client.WithToken(token))
	if _, err := c.Deployments(context.Background()); err != nil {
		t.Fatalf("client with token: %v", err)
	}
	// A restart keeps the token.
	s.stop(t)
	s.start(t)
	data2, _ := os.ReadFile(tokenPath)
	if string(data2) != string(data) {
		t.Fatal("restart changed the token")
	}
}

func TestAuthOff(t *testing.T) {
	s := startServer(t, "TESTBEDOS_AUTH=off")
	resp, err := http.Get(s.tcpURL(t) + "/api/deployments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("auth off: %d", resp.StatusCode)
	}
	if !strings.Contains(s.stderr.String(), "authentication is off") {
		t.Fatal("no warning that auth is off")
	}
}
