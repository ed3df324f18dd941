package docker

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// The client's connection to dockerd closes soon after its last call, so
// no connection (and none of the goroutines that serve it) outlives an
// action by long.
func TestClientClosesIdleConnections(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var open atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Api-Version", "1.41")
			w.Write([]byte("OK"))
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	d, err := New(Options{Host: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.cli.Ping(context.Background(), client.PingOptions{}); err != nil {
		t.Fatal(err)
	}
	if open.Load() != 1 {
		t.Fatalf("%d connections open after a call, want 1", open.Load())
	}
	// Well before the library's own 30 s, however loaded the machine.
	for deadline := time.Now().Add(IdleTimeout + 10*time.Second); open.Load() != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the idle connection to dockerd is still open %s after the call", IdleTimeout+10*time.Second)
		}
	}
}
