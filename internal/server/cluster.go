package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// joinTimeout bounds the join a client makes at start.
const joinTimeout = 30 * time.Second

// setupCluster makes the cluster control plane of SPEC 8: on the main the
// cluster token and the membership of kvm-compose-config.json with its
// heartbeats; on a client the follower, which joins now when it holds no
// member secret yet (and then saves the mode).
func (s *Server) setupCluster(ctx context.Context) error {
	if s.cfg.Mode == config.ModeClient {
		return s.setupClient(ctx)
	}
	var err error
	if s.clusterToken, err = loadToken(s.cfg.ClusterTokenPath()); err != nil {
		return fmt.Errorf("cluster token: %w", err)
	}
	s.members, err = cluster.OpenMembers(cluster.MembersOptions{
		Path:     s.cfg.ClusterConfigPath(),
		Main:     api.ClusterHost{HostConfig: s.host, Fingerprint: s.identity.Fingerprint},
		Interval: s.cfg.HeartbeatInterval, Misses: s.cfg.HeartbeatMisses,
		Checker: cluster.NewHealthChecker(&s.identity.Certificate),
		Publish: s.events.Publish,
		Count:   func(n int) { s.metrics.members.Set(float64(n)) },
		Log:     s.log.With("part", "cluster"),
	})
	return err
}

func (s *Server) setupClient(ctx context.Context) error {
	if s.cfg.Listen == "" || !s.cfg.UseTLS() {
		return fmt.Errorf("client mode: the main reaches this host over TLS: listen on the testbed address (--listen %s:3355) with --tls auto or on", s.host.IP)
	}
	_, port, err := net.SplitHostPort(s.cfg.Listen)
	if err != nil || port == "0" {
		return fmt.Errorf("client mode: listen address %q: want ip:port with a fixed port", s.cfg.Listen)
	}
	s.follower, err = cluster.NewFollower(cluster.FollowerOptions{
		Path: s.cfg.MemberPath(),
		Main: cluster.MemberFile{MainURL: s.cfg.MainURL, MainFingerprint: s.cfg.MainFingerprint, ClusterToken: s.cfg.ClusterToken},
		Own:  s.identity, Host: s.host,
		URL:      "https://" + net.JoinHostPort(s.host.IP, port),
		Interval: s.cfg.HeartbeatInterval, Misses: s.cfg.HeartbeatMisses,
		Log: s.log.With("part", "cluster"),
	})
	if err != nil {
		return fmt.Errorf("client mode: %w", err)
	}
	if !s.follower.Joined() {
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		defer cancel()
		if err := s.follower.Join(jctx); err != nil {
			return err
		}
	}
	st := s.follower.State()
	return s.lock.SaveMode(config.SavedMode{Mode: config.ModeClient, MainURL: st.MainURL, Fingerprint: st.MainFingerprint})
}

// clusterAPI is what the REST handlers see of the cluster (main only).
func (s *Server) clusterAPI() httpapi.Cluster {
	if s.members == nil {
		return nil
	}
	return &clusterAPI{s: s, host: s.host}
}

type clusterAPI struct {
	s    *Server
	mu   sync.Mutex
	host api.HostConfig
}

func (c *clusterAPI) Host() api.HostConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.host
}

// SetHost saves a user's host.json; is_main_host follows the mode.
func (c *clusterAPI) SetHost(ctx context.Context, h api.HostConfig) (api.HostConfig, error) {
	if !h.IsMainHost {
		return h, fmt.Errorf("%w: host.json: is_main_host false: this host runs as the main", api.ErrInvalidHost)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := cluster.SaveHost(c.s.cfg.HostPath(), h); err != nil {
		return h, err
	}
	c.host = h
	return h, c.s.members.SetMain(h)
}

func (c *clusterAPI) Config() api.ClusterConfig { return c.s.members.Config() }
func (c *clusterAPI) Join(req api.JoinRequest, peer string) (api.JoinAnswer, error) {
	return c.s.members.Join(req, peer)
}
func (c *clusterAPI) List() []api.Member                     { return c.s.members.List() }
func (c *clusterAPI) Member(name string) (api.Member, error) { return c.s.members.Member(name) }
func (c *clusterAPI) Remove(name string) error               { return c.s.members.Remove(name) }

// Routes whose doors are not (only) the API token.
const (
	joinRoute       = "POST /api/cluster"
	membershipRoute = "GET /api/cluster/{name}"
)

// clusterDoors opens the cluster routes to their own credentials (SPEC 11):
// POST /api/cluster takes the cluster token and nothing else over TCP;
// GET /api/cluster/{name} also takes that member's secret (over TLS from
// its pinned certificate). Every other route, and every other credential,
// goes on to the API token check: the cluster token opens nothing else.
func (s *Server) clusterDoors(mux *http.ServeMux, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.clusterToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if trusted(r) || s.members == nil {
			next.ServeHTTP(w, r)
			return
		}
		_, pattern := mux.Handler(r)
		bearer, hasBearer := bearerOf(r)
		switch pattern {
		case joinRoute:
			sum := sha256.Sum256([]byte(bearer))
			if hasBearer && subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
				next.ServeHTTP(w, authorize(r))
				return
			}
			countAs(r, routeUnauthenticated)
			msg := "missing cluster token: send Authorization: Bearer <cluster token>, as `testbedos-server client --join TOKEN` does"
			if hasBearer {
				msg = "wrong cluster token: get a new join token on the main (testbedos-server join-token)"
			}
			unauthorized(w, msg)
			return
		case membershipRoute:
			name := strings.TrimPrefix(r.URL.Path, "/api/cluster/")
			if hasBearer && s.members.Authenticate(name, bearer, peerPin(r)) {
				next.ServeHTTP(w, authorize(r))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// clientRoutes is a client host's API: its health for the main's
// heartbeats under /api/agent/ (member secret, from the main's pinned
// certificate), and its status; nothing of the main's API.
func (s *Server) clientRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{\"status\": \"ok\"}\n"))
	})
	mux.HandleFunc("GET /api/config/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.status())
	})
	mux.HandleFunc("GET /api/agent/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, api.AgentHealth{Name: s.host.Name, Status: "ok"})
	})
	mux.Handle(metricsRoute, s.metrics.handler())
	patterns := []string{"GET /healthz", "GET /api/config/status", "GET /api/agent/health", metricsRoute}
	if s.agent != nil {
		patterns = append(patterns, s.agent(mux)...)
	}
	h := httpapi.JSONErrors(mux)
	h = s.requireMember(h)
	return logRequests(s.log, s.metrics, mux, patterns)(h)
}

// requireMember lets into /api/agent/ only the main: the member secret,
// over TLS from the main's pinned certificate. The rest of a client's API
// (status, metrics) takes this host's API token over TCP, nothing over the
// socket; /healthz is open.
func (s *Server) requireMember(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/agent/") {
			tok, ok := bearerOf(r)
			if trusted(r) || r.URL.Path == "/healthz" || s.token == "" || (ok && equalToken(tok, s.token)) {
				next.ServeHTTP(w, r)
				return
			}
			countAs(r, routeUnauthenticated)
			unauthorized(w, "this is a client host: send this host's API token (its config/token); the main drives it through /api/agent/")
			return
		}
		if tok, ok := bearerOf(r); ok && s.follower.Authenticate(tok, peerPin(r)) {
			next.ServeHTTP(w, authorize(r))
			return
		}
		countAs(r, routeUnauthenticated)
		unauthorized(w, "the agent API takes the member secret of this host, from the main")
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
