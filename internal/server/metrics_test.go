package server

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/config"
)

// requestSeries counts the series of testbedos_http_requests_total and
// returns their label sets.
func requestSeries(t *testing.T, s *Server) []string {
	t.Helper()
	families, err := s.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != "testbedos_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out = append(out, strings.Join(labels, ","))
		}
	}
	return out
}

// TestStrangersMakeNoNewSeries sends 2,000 requests with made-up methods and
// paths over TCP, most without a token: the request counter keeps a handful
// of series (no request can create a new series).
func TestStrangersMakeNoNewSeries(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Server{
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", DB: "file", Auth: true,
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestHTTP(t, s)
	token, err := os.ReadFile(cfg.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 9))
	word := func(n int) string {
		const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
	codes := map[int]int{}
	for i := range 2000 {
		method := "X" + word(8)
		if i%3 == 0 {
			method = methods[rng.IntN(len(methods))]
		}
		path := "/" + word(6) + "/" + word(10)
		if i%5 == 0 {
			path = "/api/deployments/" + strings.ToLower(word(8))
		}
		req, err := http.NewRequest(method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 { // a quarter knows the token, and still makes things up
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		} else if i%4 == 1 {
			req.Header.Set("Authorization", "Bearer "+word(64))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request %d (%s %s): %v", i, method, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusUnauthorized] < 1000 {
		t.Fatalf("answers %v: want most to be 401", codes)
	}
	series := requestSeries(t, s)
	if len(series) >= 30 {
		t.Fatalf("%d series of testbedos_http_requests_total after 2,000 made-up requests, want < 30; first ones:\n%s",
			len(series), strings.Join(series[:min(len(series), 10)], "\n"))
	}
	for _, l := range series {
		if strings.Contains(l, "code=401") && !strings.Contains(l, "route=unauthenticated") {
			t.Errorf("a refused request counted by its route: %s", l)
		}
	}
	t.Logf("%d series: %s", len(series), strings.Join(series, " | "))
}
