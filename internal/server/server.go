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
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/testbedos/testbedos/internal/actions"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/events"
	"github.com/testbedos/testbedos/internal/gui"
	"github.com/testbedos/testbedos/internal/images"
	"github.com/testbedos/testbedos/internal/logstream"
	"github.com/testbedos/testbedos/internal/monitor"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/store/file"
	"github.com/testbedos/testbedos/internal/store/sqlite"
	"github.com/testbedos/testbedos/internal/tlsid"
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
	// Lock is the data folder's lock when the caller took it (and releases
	// it, after its last write there); nil means New takes it and Close
	// releases it.
	Lock *config.DataLock
	// Agent, in client mode, is the agent API the main drives, mounted
	// under /api/agent/ behind the member secret and the main's pinned
	// certificate.
	Agent http.Handler
}

// Server is one running testbedos-server.
type Server struct {
	// ovnNet is this host's OVN when the network backend is ovn (the
	// southbound database members join, on a main).
	ovnNet *ovn.Network
	// closeNet stops what this host's network started (the ovn backend's
	// OVS/OVN daemons); nil with the bridge backend.
	closeNet func()
	cfg      config.Server
	log      *slog.Logger
	store    store.Store
	hub      *logstream.Hub
	events   *events.Hub
	runner   *actions.Runner
	snaps    httpapi.Snapshots // nil when the executor cannot read snapshots
	plans    httpapi.Planner   // nil when the executor cannot plan
	live     httpapi.Live      // nil when the executor cannot reach guests
	metrics  *metrics
	handler  http.Handler
	// table is every route with its policy (routes.go).
	table   []Route
	started time.Time
	streams streamGroup
	token   string // empty when auth is off
	// bodyTimeout bounds the read of a request's body (conns.go); tests
	// shorten it.
	bodyTimeout time.Duration
	// guesses locks out addresses that guess credentials (guesses.go).
	guesses *guesses
	// gui serves the pages (main mode); sessions are its logins; apiMux
	// is the REST API below auth, which the GUI creates deployments with.
	gui      *gui.GUI
	sessions *sessions
	apiMux   *http.ServeMux
	// hostName is this machine's host name.
	hostName string
	// images is the VM image cache (GET/POST/DELETE /api/images).
	images *images.Store
	// exec runs the actions (the engine, unless a test gave another).
	exec actions.Executor
	// host is config/host.json; identity this host's TLS certificate.
	host     api.HostConfig
	identity tlsid.Identity
	// clusterToken, members (main) and follower (client) are the cluster
	// control plane (cluster.go).
	clusterToken string
	members      *cluster.Members
	// admissions are the limited join tokens and the hosts removed for
	// good; joins limits the rate of new hosts (joins.go).
	admissions *cluster.Admissions
	joins      *joinBucket
	follower   *cluster.Follower
	lock       *config.DataLock
	ownLock    bool // lock was taken by New, so Close releases it
	// agent is the agent API in client mode (Options.Agent).
	agent http.Handler

	// stopping is set when shutdown begins: new actions get 503 while the
	// running ones are interrupted, on every connection still open.
	stopping atomic.Bool
	// background runs the jobs Serve starts (the log pruner) under quit;
	// Close ends quit and waits for them before it closes the store and
	// releases the lock.
	background     sync.WaitGroup
	quit           context.Context
	stopBackground context.CancelFunc
	// prune deletes old orchestration logs once; tests replace it.
	prune func(context.Context) (int, error)
	// monitor samples this host and its guests while Serve runs; guests
	// lists a deployment's guests (nil when the executor cannot).
	monitor *monitor.Monitor
	guests  httpapi.Guests
	// liveEnd ends consoles and captures at shutdown (they have no end of
	// their own).
	liveCtx context.Context
	liveEnd context.CancelFunc
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
	var err error
	lock, ownLock := opts.Lock, false
	if lock == nil {
		if lock, err = cfg.LockDataDir(); err != nil {
			return nil, err
		}
		ownLock = true
	}
	s := &Server{cfg: cfg, log: log, metrics: newMetrics(), started: time.Now(), lock: lock, ownLock: ownLock,
		hostName: hostName(), agent: opts.Agent, guesses: newGuesses(), bodyTimeout: bodyTimeout}
	s.quit, s.stopBackground = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if ok {
			return
		}
		if s.store != nil {
			s.store.Close()
		}
		if s.members != nil {
			s.members.Close()
		}
		if ownLock {
			lock.Release()
		}
	}()
	// mode.json only once the folder is ours: a second server refused by
	// the lock must not change what the running one starts as next time.
	// A client's mode is saved once it has joined (cluster.go).
	if cfg.Mode == config.ModeMain {
		if err := lock.SaveMode(config.SavedMode{Mode: cfg.Mode}); err != nil {
			return nil, err
		}
	}
	if err := s.setupIdentity(); err != nil {
		return nil, err
	}
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
	s.events = events.New(events.DefaultBuffer)
	if err := s.setupCluster(ctx); err != nil {
		return nil, err
	}
	monOpts := monitor.Options{Interval: cfg.MonitorInterval, Records: records{s.store}, Logger: log.With("part", "monitor")}
	if s.images, err = imageStore(cfg); err != nil {
		return nil, err
	}
	exec := opts.Executor
	if exec == nil {
		// The engine names this host as the cluster does: host.json's name.
		var join *api.OVNJoin
		if s.follower != nil {
			join = s.follower.State().OVN
		}
		local, closeNet, err := newLocalHost(ctx, cfg, s.host, join, s.images, log)
		if err != nil {
			return nil, err
		}
		s.closeNet = closeNet
		if h, ok := local.Net.(*ovn.Host); ok {
			s.ovnNet = h.OVN
		}
		var hosts engine.Hosts = engine.SingleHost{Main: local}
		if s.members != nil {
			hosts = &clusterHosts{main: local, mainIP: s.host.IP, mainCPUs: s.host.CPUs, mainMemoryMB: s.host.MemoryMB, members: s.members, own: s}
		}
		exec = newEngine(cfg, s.host, hosts, s.store, log)
		monOpts.Host = local
		if cfg.Mode == config.ModeClient && s.agent == nil {
			s.agent = s.agentRoutes(ctx, local)
		}
	}
	s.exec = exec
	s.snaps, _ = exec.(httpapi.Snapshots)
	s.plans, _ = exec.(httpapi.Planner)
	s.monitor = monitor.New(monOpts)
	s.metrics.registry.MustRegister(s.monitor.Collector())
	if lister, ok := exec.(httpapi.Guests); ok {
		s.guests = guestResources{list: lister, mon: s.monitor, hostName: s.host.Name}
	}
	s.live, _ = exec.(httpapi.Live)
	s.liveCtx, s.liveEnd = context.WithCancel(context.Background())
	s.runner = actions.NewRunner(actions.Options{
		Store: s.store, Hub: s.hub, Executor: exec, Logger: log,
		Observe: s.metrics.observeAction, Events: s.events,
	})
	// From here on the server reads its records as the runner serves them:
	// an outcome the store refused (a full disk) reads as recorded.
	s.store = s.runner.Records()
	s.prune = actions.NewPruner(actions.PruneOptions{
		Store: s.store, Dir: cfg.OrchestrationDir(),
		Retention: cfg.LogRetention, MaxCount: cfg.LogMaxCount, Logger: log,
	}).Prune
	n, err := s.runner.Recover(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Warn("recovered interrupted actions", "count", n)
	}
	// DHCP servers of routers and the userspace impairments of kernels
	// without netem run in this process: those of deployments still
	// recorded start again.
	if d, ok := exec.(resumer); ok {
		if err := d.Resume(ctx); err != nil {
			log.Warn("could not start again every DHCP server and impairment of the recorded deployments", "err", err)
		}
	}
	if cfg.Mode != config.ModeClient {
		s.sessions = newSessions(SessionTTL)
		s.gui, err = gui.New(gui.Options{
			Records: s.store, ProjectsDir: filepath.Join(cfg.DataDir, "projects"), Status: s.status,
			Dev: cfg.Dev, DevDir: cfg.DevDir, Logger: log,
			API: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.apiMux.ServeHTTP(w, r) }),
		})
		if err != nil {
			return nil, err
		}
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
	if s.cfg.Mode == config.ModeClient {
		s.table = s.clientTable()
		return s.serveTable(s.table)
	}
	s.table = s.mainTable(httpapi.Deps{
		Store: s.store, Runner: s.runner, Snapshots: s.snaps, Plans: s.plans, Live: s.live, Stopping: s.liveCtx.Done(), Hub: s.hub, Events: s.events, Logger: s.log,
		Status: s.status, Cluster: s.clusterAPI(), Guests: s.guests, Monitor: s.monitor,
		DataDir: s.cfg.DataDir, TopologySVG: gui.TopologySVG, Images: s.images,
		StreamOpened: func() error {
			if !s.streams.open() {
				return errStreamsClosed
			}
			s.metrics.streams.Inc()
			return nil
		},
		StreamClosed: func() {
			s.metrics.streams.Dec()
			s.streams.wg.Done()
		},
	})
	return s.serveTable(s.table)
}

func (s *Server) status() api.ServerStatus {
	mode := config.ModeMain
	if s.cfg.Mode == config.ModeClient {
		mode = config.ModeClient
	}
	return api.ServerStatus{
		Mode: mode, Version: Version, Hostname: s.hostName,
		StartedAt: s.started.UTC(), UptimeSeconds: time.Since(s.started).Seconds(),
		Store: s.cfg.DB, TLS: s.cfg.UseTLS(), Fingerprint: s.identity.Fingerprint,
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
		ls = append(ls, s.tlsListener(limitConns(l, s.cfg.MaxConns)))
	}
	if s.cfg.Socket != "" {
		l, err := listenSocket(s.cfg.Socket)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, err
		}
		ls = append(ls, limitConns(l, socketMaxConns))
	}
	return ls, nil
}

// Start opens the listeners and serves on them in the background; stop
// ends the server gracefully and returns what Serve returned.
func (s *Server) Start() (ls []net.Listener, stop func() error, err error) {
	if ls, err = s.Listeners(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ls...) }()
	return ls, func() error { cancel(); return <-done }, nil
}

// Serve serves on the listeners until ctx ends, then stops gracefully:
// no new connections, running actions interrupted and recorded, streams
// ended with their outcome, the store closed.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ConnContext:       markConn,
		ConnState:         trackState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	bg, cancelBG := context.WithCancel(ctx)
	defer cancelBG()
	unhook := context.AfterFunc(s.quit, cancelBG)
	defer unhook()
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		s.pruneLogs(bg)
	}()
	if s.cfg.Mode != config.ModeClient {
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			s.restore(bg)
		}()
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		s.monitor.Run(bg)
	}()
	if s.follower != nil {
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			s.follower.Run(bg)
		}()
	}
	if s.members != nil {
		sub := s.events.Subscribe()
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			defer sub.Close()
			s.cleanReturningHosts(bg, sub.C)
		}()
	}
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
	// New actions get 503 while the running ones are interrupted, and the
	// API keeps answering meanwhile (reads, cancel, followers getting their
	// outcome); only then are the connections closed: http.Server drops
	// every request it reads once its Shutdown has begun.
	err := s.interrupt(stop)
	err = errors.Join(err, srv.Shutdown(stop), s.release(stop))
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, err)
}
