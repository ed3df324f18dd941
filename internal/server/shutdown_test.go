package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/store/file"
)

// slowPrune replaces the log pruner: once stopped it takes its time (until
// release is closed) and records what it saw then.
type slowPrune struct {
	cfg      config.Server
	stopped  chan struct{} // closed when the pruner saw its context end
	release  chan struct{}
	lockHeld atomic.Bool
	finished atomic.Bool
}

func newSlowPrune(cfg config.Server) *slowPrune {
	return &slowPrune{cfg: cfg, stopped: make(chan struct{}), release: make(chan struct{})}
}

func (p *slowPrune) prune(ctx context.Context) (int, error) {
	<-ctx.Done()
	select {
	case <-p.stopped:
		return 0, ctx.Err() // a later call, after the first one finished
	default:
	}
	close(p.stopped)
	<-p.release
	lock, err := p.cfg.LockDataDir()
	p.lockHeld.Store(errors.Is(err, config.ErrDataDirInUse))
	if err == nil {
		lock.Release()
	}
	p.finished.Store(true)
	return 0, ctx.Err()
}

// serve runs e.srv.Serve on a loopback port; stop ends it and returns its
// error.
func serve(t *testing.T, e *env) (stop func() error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Serve(ctx, l) }()
	return func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("Serve did not return")
			return nil
		}
	}
}

// TestShutdownWaitsForThePruner: a prune still running when the server
// stops is waited for before the store closes and the lock is released.
func TestShutdownWaitsForThePruner(t *testing.T) {
	e := newEnv(t)
	p := newSlowPrune(e.cfg)
	e.srv.prune = p.prune
	stop := serve(t, e)
	go func() {
		<-p.stopped
		time.Sleep(200 * time.Millisecond) // Serve must still be waiting
		close(p.release)
	}()
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if !p.finished.Load() {
		t.Fatal("Serve returned while the log pruner was still running")
	}
	if !p.lockHeld.Load() {
		t.Fatal("the data folder's lock was released while the log pruner was still running")
	}
	lock, err := e.cfg.LockDataDir()
	if err != nil {
		t.Fatalf("lock after Serve returned: %v", err)
	}
	lock.Release()
}

// post sends body to base+path and returns the status and the body.
func post(t *testing.T, base, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestActionsDuringShutdownAre503: while a running action is interrupted
// at shutdown, the server still answers over TCP, and a new action gets 503
// with the JSON error body; reads still work; the interrupted action is
// recorded as such.
func TestActionsDuringShutdownAre503(t *testing.T) {
	if !slices.ContainsFunc(httpapi.Routes(httpapi.Deps{}), func(rt httpapi.Route) bool {
		return rt.Pattern == "POST /api/deployments/{name}/action" && rt.Action
	}) {
		t.Fatal("the route that starts actions is not marked as an action in the route table")
	}
	e := newEnv(t)
	e.exec.linger = make(chan struct{})
	e.create(t, "busy")
	idle := t.TempDir() // one project folder per deployment
	os.WriteFile(filepath.Join(idle, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	if _, err := e.c.CreateDeployment(context.Background(), "idle", idle); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, l) }()
	code, body := post(t, base, "/api/deployments/busy/action", `{"command":"up"}`)
	if code != http.StatusAccepted {
		t.Fatalf("action before shutdown: %d %s", code, body)
	}
	var accepted api.ActionAccepted
	json.Unmarshal([]byte(body), &accepted)

	cancel()
	// 409 (busy) until the server stops; then 503, while the action lingers.
	deadline := time.Now().Add(10 * time.Second)
	for code == http.StatusAccepted || code == http.StatusConflict {
		if time.Now().After(deadline) {
			t.Fatalf("still %d %s 10 s after the stop began", code, body)
		}
		time.Sleep(5 * time.Millisecond)
		code, body = post(t, base, "/api/deployments/busy/action", `{"command":"down"}`)
	}
	for _, name := range []string{"busy", "idle"} {
		code, body := post(t, base, "/api/deployments/"+name+"/action", `{"command":"up"}`)
		var eb api.ErrorBody
		if err := json.Unmarshal([]byte(body), &eb); code != http.StatusServiceUnavailable || err != nil || eb.Error.Code != code {
			t.Errorf("action on %s during shutdown: %d %s, want 503 with the JSON error body", name, code, body)
		}
	}
	resp, err := http.Get(base + "/api/deployments/idle")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("read during shutdown: %v %v, want 200", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	if idx, err := e.srv.store.LogIndex(context.Background(), "idle"); err != nil || len(idx) != 0 {
		t.Errorf("the refused action left log entries: %+v %v", idx, err)
	}
	close(e.exec.linger)
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	records, err := file.Open(e.cfg.DeploymentsDir(), e.cfg.DeployedDir()) // as the shutdown left them, no recovery
	if err != nil {
		t.Fatal(err)
	}
	defer records.Close()
	entry, err := records.LogEntry(context.Background(), accepted.UUID)
	if err != nil || entry.ErrorCode == nil || *entry.ErrorCode != api.ErrorCodeInterrupted {
		t.Fatalf("the running action after shutdown: %+v %v, want interrupted", entry, err)
	}
}
