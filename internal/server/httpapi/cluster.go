package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// Cluster is this host's configuration and the main's membership.
type Cluster interface {
	Host() api.HostConfig
	// SetHost validates and saves host.json.
	SetHost(ctx context.Context, h api.HostConfig) (api.HostConfig, error)
	Config() api.ClusterConfig
	// SetConfig applies a posted kvm-compose-config.json (validated).
	SetConfig(ctx context.Context, cc api.ClusterConfig) (api.ClusterConfig, error)
	// Join admits a member; peer is the fingerprint of the TLS client
	// certificate the request came with, "" for none.
	// ctx carries what the join was let in with (the server's door).
	Join(ctx context.Context, req api.JoinRequest, peer string) (api.JoinAnswer, error)
	List() []api.Member
	Member(name string) (api.Member, error)
	// Remove drops a member; forget also refuses its joining again with
	// any credential made before.
	Remove(name string, forget bool) error
	// IssueJoinToken makes a join token that admits at most req.Uses hosts
	// within req.TTL.
	IssueJoinToken(ctx context.Context, req JoinTokenRequest) (JoinTokenAnswer, error)
}

// JoinTokenRequest is the body of POST /api/cluster/join-tokens.
type JoinTokenRequest struct {
	Uses int `json:"uses"`
	// TTL is a Go duration ("1h", "30m").
	TTL string `json:"ttl"`
}

// JoinTokenAnswer is a new limited join token: Secret is what a join
// token carries in place of the cluster token (`testbedos-server
// join-token --uses N --ttl D` prints the whole join token).
type JoinTokenAnswer struct {
	ID        string    `json:"id"`
	Secret    string    `json:"secret"`
	Uses      int       `json:"uses"`
	ExpiresAt time.Time `json:"expires_at"`
}

// clusterRoutes are /api/config/host, /api/config/cluster and /api/cluster….
func clusterRoutes(d Deps) []route {
	c := d.Cluster
	rts := []route{
		{"GET /api/config/host", func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, c.Host())
			return nil
		}, user},
		{"POST /api/config/host", func(w http.ResponseWriter, r *http.Request) error {
			var h api.HostConfig
			if err := decode(w, r, &h); err != nil {
				return err
			}
			saved, err := c.SetHost(r.Context(), h)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, saved)
			return nil
		}, user},
		{"GET /api/config/cluster", func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, c.Config())
			return nil
		}, user},
		{"POST /api/config/cluster", func(w http.ResponseWriter, r *http.Request) error {
			var cc api.ClusterConfig
			if err := decode(w, r, &cc); err != nil {
				return err
			}
			saved, err := c.SetConfig(r.Context(), cc)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, saved)
			return nil
		}, user},
		{"GET /api/cluster", func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, api.MemberList{Members: c.List()})
			return nil
		}, user},
		{"POST /api/cluster", func(w http.ResponseWriter, r *http.Request) error {
			var req api.JoinRequest
			if err := decode(w, r, &req); err != nil {
				return err
			}
			peer := tlsid.PeerFingerprint(r.TLS)
			if r.TLS != nil && peer == "" {
				return errorf(http.StatusBadRequest, api.ErrBadRequest, "a joining host presents its own certificate as TLS client certificate (the one fingerprint names)")
			}
			ans, err := c.Join(r.Context(), req, peer)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, ans)
			return nil
		}, join},
		{"POST /api/cluster/join-tokens", func(w http.ResponseWriter, r *http.Request) error {
			var req JoinTokenRequest
			if err := decode(w, r, &req); err != nil {
				return err
			}
			ans, err := c.IssueJoinToken(r.Context(), req)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusCreated, ans)
			return nil
		}, user},
		{"GET /api/cluster/{name}", func(w http.ResponseWriter, r *http.Request) error {
			name, err := memberName(r)
			if err != nil {
				return err
			}
			m, err := c.Member(name)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, m)
			return nil
		}, memberOrUser},
		{"DELETE /api/cluster/{name}", func(w http.ResponseWriter, r *http.Request) error {
			name, err := memberName(r)
			if err != nil {
				return err
			}
			forget := false
			switch r.URL.Query().Get("forget") {
			case "", "false", "0":
			case "true", "1":
				forget = true
			default:
				return errorf(http.StatusBadRequest, api.ErrBadRequest, "forget: want true or false")
			}
			if err := c.Remove(name, forget); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}, user},
	}
	if c == nil {
		for i := range rts {
			rts[i].handler = func(w http.ResponseWriter, r *http.Request) error {
				return fmt.Errorf("%w: this server keeps no cluster", api.ErrUnavailable)
			}
		}
	}
	return rts
}

func memberName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !api.ValidName(name) {
		return "", errorf(http.StatusBadRequest, api.ErrBadRequest, fmt.Sprintf("member name %q: want %s", name, api.NamePattern))
	}
	return name, nil
}
