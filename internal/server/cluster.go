package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// joinTimeout bounds the join a client makes at start.
const joinTimeout = 30 * time.Second

// setupCluster makes the cluster control plane: on the main the
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
	if s.admissions, err = cluster.OpenAdmissions(s.cfg.JoinTokensPath()); err != nil {
		return err
	}
	s.joins = newJoinBucket()
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
	// joinMu makes each join's checks and admission one step.
	joinMu sync.Mutex
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
	// The original's host.json has no name, cpus or memory_mb.
	h = h.WithDefaults(api.HostDefaults{Name: c.host.Name, CPUs: c.host.CPUs, MemoryMB: c.host.MemoryMB})
	if err := cluster.SaveHost(c.s.cfg.HostPath(), h); err != nil {
		return h, err
	}
	c.host = h
	return h, c.s.members.SetMain(h)
}

func (c *clusterAPI) Config() api.ClusterConfig              { return c.s.members.Config() }
func (c *clusterAPI) List() []api.Member                     { return c.s.members.List() }
func (c *clusterAPI) Member(name string) (api.Member, error) { return c.s.members.Member(name) }

// admitJoin lets in a host joining with the cluster token; the cluster
// token opens nothing else.
func (s *Server) admitJoin(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if s.guesses.refuseLockedOut(w, r) {
		return r, false
	}
	bearer, hasBearer := bearerOf(r)
	want := sha256.Sum256([]byte(s.clusterToken))
	sum := sha256.Sum256([]byte(bearer))
	if hasBearer && s.clusterToken != "" && subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
		s.guesses.succeeded(r)
		cred := cluster.JoinCredential{Created: clusterTokenMade(s.cfg.ClusterTokenPath())}
		return r.WithContext(context.WithValue(r.Context(), joinCredentialKey{}, cred)), true
	}
	if cred, ok := s.admissions.Credential(bearer); hasBearer && ok {
		s.guesses.succeeded(r)
		return r.WithContext(context.WithValue(r.Context(), joinCredentialKey{}, cred)), true
	}
	s.guesses.failed(r)
	countAs(r, routeUnauthenticated)
	msg := "missing cluster token: send Authorization: Bearer <cluster token>, as `testbedos-server client --join TOKEN` does"
	if hasBearer {
		msg = "wrong, spent or expired cluster token: get a new join token on the main (testbedos-server join-token)"
	}
	unauthorized(w, r, msg)
	return r, false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
