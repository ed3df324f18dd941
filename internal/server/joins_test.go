package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
)

// TestJoinsAreBounded: a main capped at three members refuses the fourth
// new host with 403 however valid its cluster token (where 1,500 fake
// members once joined in 12 s), a member already in rejoins, and new
// hosts past the burst get 429 until the bucket refills.
func TestJoinsAreBounded(t *testing.T) {
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", DB: "file", Auth: true,
		HeartbeatInterval: time.Hour, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10, MaxMembers: 3,
	}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestHTTP(t, s)
	raw, _ := os.ReadFile(cfg.ClusterTokenPath())
	token := strings.TrimSpace(string(raw))
	join := func(name string, fp int) int {
		t.Helper()
		body, _ := json.Marshal(api.JoinRequest{
			Name: name, Fingerprint: fmt.Sprintf("sha256:%064x", fp), URL: "https://127.0.0.2:1",
			Host: api.HostConfig{Name: name, IP: "127.0.0.2", TestbedNIC: "lo", CPUs: 1, MemoryMB: 64},
		})
		req, _ := http.NewRequest("POST", ts.URL+"/api/cluster", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if got := join(fmt.Sprintf("c%d", i), i+1); got != 200 {
			t.Fatalf("join %d: %d", i, got)
		}
	}
	if got := join("c3", 4); got != http.StatusForbidden {
		t.Fatalf("a fourth member past the cap of 3: %d, want 403", got)
	}
	if got := join("c0", 1); got != 200 {
		t.Fatalf("a member joining again: %d, want 200", got)
	}

	// The bucket: a burst, then one every joinEvery.
	now := time.Unix(1000, 0)
	b := &joinBucket{now: func() time.Time { return now }, tokens: joinBurst, last: now}
	for i := range joinBurst {
		if _, ok := b.take(); !ok {
			t.Fatalf("join %d of the burst refused", i)
		}
	}
	if wait, ok := b.take(); ok || wait != joinEvery {
		t.Fatalf("past the burst: %v %v, want a wait of %v", ok, wait, joinEvery)
	}
	now = now.Add(joinEvery)
	if _, ok := b.take(); !ok {
		t.Fatal("no join after the bucket refilled")
	}
	s.joins = b
	b.tokens = 0
	s.cfg.MaxMembers = 10
	if got := join("c4", 5); got != http.StatusTooManyRequests {
		t.Fatalf("a new host with the bucket empty: %d, want 429", got)
	}
}
