// Package server assembles testbedos-server: store, action runner, engine,
// REST API, log streams and metrics behind one HTTP handler, served on TCP
// and on a unix socket, with a graceful stop.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actions"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/events"
	"github.com/testbedos/testbedos/internal/logstream"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/store/file"
	"github.com/testbedos/testbedos/internal/store/sqlite"
)

// Version is the server version, set at build time with -ldflags.
var Version = "dev"

// Options configure a Server.
type Options struct {
	Config config.Server
	Logger *slog.Logger
	// Executor runs the actions; nil means the real engine with the
	// drivers of this host. When it also reads snapshots (the engine does),
	// it serves the snapshot routes; otherwise they answer 503.
	Executor actions.Executor
}

// Server is one running testbedos-server.
type Server struct {
	cfg     config.Server
	log     *slog.Logger
	store   store.Store
	hub     *logstream.Hub
	events  *events.Hub
	runner  *actions.Runner
	snaps   httpapi.Snapshots // nil when the executor cannot read snapshots
	metrics *metrics
	handler http.Handler
	started time.Time
	streams sync.WaitGroup
	token   string // empty when auth is off
	// hostName is this host's name in the cluster.
	hostName string
	unlock   func() // releases the data folder
}

// New opens the data folder, recovers interrupted actions and builds the
// handler. It does not listen yet.
func New(ctx context.Context, opts Options) (*Server, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.MakeDirs(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	unlock, err := cfg.LockDataDir()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, metrics: newMetrics(), started: time.Now(), unlock: unlock, hostName: hostName()}
	ok := false
	defer func() {
		if ok {
			return
		}
		if s.store != nil {
			s.store.Close()
		}
		unlock()
	}()
	if cfg.Auth {
		if s.token, err = loadToken(cfg.TokenPath()); err != nil {
			return nil, err
		}
	} else {
		log.Warn("authentication is off: anyone who reaches the TCP port controls this host; use only for development")
	}
	if s.store, err = openStore(cfg); err != nil {
		return nil, err
	}
	if s.hub, err = logstream.NewHub(cfg.OrchestrationDir(), logstream.WithMaxBytes(cfg.LogMaxBytes)); err != nil {
		return nil, err
	}
	exec := opts.Executor
	if exec == nil {
		if exec, err = newEngine(cfg, s.store, s.hostName, log); err != nil {
			return nil, err
		}
	}
	s.events = events.New(events.DefaultBuffer)
	s.snaps, _ = exec.(httpapi.Snapshots)
	s.runner = actions.NewRunner(actions.Options{
		Store: s.store, Hub: s.hub, Executor: exec, Logger: log,
		Observe: s.metrics.observeAction, Events: s.events,
	})
	n, err := s.runner.Recover(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Warn("recovered interrupted actions", "count", n)
	}
	s.handler = s.routes()
	ok = true
	return s, nil
}

func openStore(cfg config.Server) (store.Store, error) {
	switch cfg.DB {
	case "file":
		return file.Open(cfg.DeploymentsDir(), cfg.DeployedDir())
	case "sqlite":
		return sqlite.Open(cfg.SQLitePath())
	}
	return nil, fmt.Errorf("store %q is not available", cfg.DB)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.Deps{
		Store: s.store, Runner: s.runner, Snapshots: s.snaps, Hub: s.hub, Events: s.events, Logger: s.log,
		Status: s.status,
		StreamOpened: func() {
			s.streams.Add(1)
			s.metrics.streams.Inc()
		},
		StreamClosed: func() {
			s.metrics.streams.Dec()
			s.streams.Done()
		},
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	h := httpapi.JSONErrors(mux)
	if s.token != "" {
		h = requireToken(s.token)(h)
	}
	return logRequests(s.log, s.metrics)(h)
}

func (s *Server) status() api.ServerStatus {
	return api.ServerStatus{
		Mode: config.ModeMain, Version: Version, Hostname: s.hostName,
		StartedAt: s.started.UTC(), UptimeSeconds: time.Since(s.started).Seconds(),
		Store: s.cfg.DB,
	}
}

// Handler is the whole HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// Listeners opens the configured TCP address and unix socket.
func (s *Server) Listeners() ([]net.Listener, error) {
	var ls []net.Listener
	if s.cfg.Listen != "" {
		l, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		ls = append(ls, l)
	}
	if s.cfg.Socket != "" {
		l, err := listenSocket(s.cfg.Socket)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Serve serves on the listeners until ctx ends, then stops gracefully:
// no new connections, running actions interrupted and recorded, streams
// ended with their outcome, the store closed.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       markConn,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go s.pruneLogs(ctx)
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		s.log.Info("listening", "addr", l.Addr().String(), "network", l.Addr().Network())
		go func() { errc <- srv.Serve(l) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down")
	stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := errors.Join(srv.Shutdown(stop), s.Close(stop))
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, err)
}

// pruneEvery is how often old orchestration logs are deleted.
const pruneEvery = time.Hour

// pruneLogs deletes old orchestration logs at start and then periodically,
// until ctx ends.
func (s *Server) pruneLogs(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		n, err := actions.Prune(ctx, actions.PruneOptions{
			Store: s.store, Dir: s.cfg.OrchestrationDir(),
			Retention: s.cfg.LogRetention, MaxCount: s.cfg.LogMaxCount,
		})
		if err != nil {
			s.log.Error("pruning orchestration logs", "err", err)
		} else if n > 0 {
			s.log.Info("pruned orchestration logs", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close interrupts running actions, waits for them and for the log and
// event streams to end (until ctx ends), and closes the store.
func (s *Server) Close(ctx context.Context) error {
	err := s.runner.Shutdown(ctx)
	// The interrupted actions' events are out; event streams end now.
	s.events.Close()
	done := make(chan struct{})
	go func() {
		s.streams.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	err = errors.Join(err, s.store.Close())
	s.unlock()
	return err
}
