package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server/httpapi"
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

// TestActionsDuringShutdownAre503: once shutdown has begun, a request that
// still reaches the handler (a keep-alive connection) cannot start an
// action; reads still work.
func TestActionsDuringShutdownAre503(t *testing.T) {
	if !slices.Contains(httpapi.Patterns(), actionRoute) {
		t.Fatalf("%q is not a route of httpapi", actionRoute)
	}
	e := newEnv(t)
	e.create(t, "before")
	e.create(t, "during")
	if code, msg := e.call(t, "POST", "/api/deployments/before/action", `{"command":"up"}`); code != http.StatusAccepted {
		t.Fatalf("action before shutdown: %d %s", code, msg)
	}
	p := newSlowPrune(e.cfg)
	e.srv.prune = p.prune
	stop := serve(t, e)
	done := make(chan error, 1)
	go func() { done <- stop() }()
	<-p.stopped // shutdown has begun and waits for the pruner

	code, msg := e.call(t, "POST", "/api/deployments/during/action", `{"command":"up"}`)
	if code != http.StatusServiceUnavailable {
		t.Errorf("action during shutdown: %d %s, want 503", code, msg)
	}
	if code, msg := e.call(t, "GET", "/api/deployments/during", ""); code != http.StatusOK {
		t.Errorf("read during shutdown: %d %s, want 200", code, msg)
	}
	if idx, err := e.srv.store.LogIndex(context.Background(), "during"); err != nil || len(idx) != 0 {
		t.Errorf("the refused action left log entries: %+v %v", idx, err)
	}
	close(p.release)
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
