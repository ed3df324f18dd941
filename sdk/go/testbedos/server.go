package testbedos

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Health returns nil when the server answers GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.c.Do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Status returns the server's mode, version, uptime and store.
func (c *Client) Status(ctx context.Context) (ServerStatus, error) {
	return c.c.Status(ctx)
}

// Metrics returns the Prometheus text of GET /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var out []byte
	err := c.c.Do(ctx, http.MethodGet, "/metrics", nil, &out)
	return string(out), err
}

// OpenAPI returns the server's OpenAPI document (GET /api/openapi.json).
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.c.Do(ctx, http.MethodGet, "/api/openapi.json", nil, &out)
	return out, err
}

// ValidateYAML checks a kvm-compose.yaml without a project folder and
// returns every problem (none: it is valid).
func (c *Client) ValidateYAML(ctx context.Context, yaml []byte) ([]Problem, error) {
	var out struct {
		Problems []Problem `json:"problems"`
	}
	err := c.c.DoRaw(ctx, http.MethodPost, "/api/validate/yaml", "application/yaml", strings.NewReader(string(yaml)), &out)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusUnprocessableEntity && json.Unmarshal(e.Body, &out) == nil {
		return out.Problems, nil
	}
	return out.Problems, err
}

// HostConfig returns this host's host.json.
func (c *Client) HostConfig(ctx context.Context) (HostConfig, error) {
	var out HostConfig
	err := c.c.Do(ctx, http.MethodGet, "/api/config/host", nil, &out)
	return out, err
}

// SetHostConfig replaces this host's host.json (validated).
func (c *Client) SetHostConfig(ctx context.Context, h HostConfig) (HostConfig, error) {
	var out HostConfig
	err := c.c.Do(ctx, http.MethodPost, "/api/config/host", h, &out)
	return out, err
}

// ClusterConfig returns the cluster's hosts (kvm-compose-config.json).
func (c *Client) ClusterConfig(ctx context.Context) (ClusterConfig, error) {
	return c.c.ClusterConfig(ctx)
}

// SetClusterConfig replaces the cluster configuration (validated).
func (c *Client) SetClusterConfig(ctx context.Context, cc ClusterConfig) (ClusterConfig, error) {
	var out ClusterConfig
	err := c.c.Do(ctx, http.MethodPost, "/api/config/cluster", cc, &out)
	return out, err
}

// Members lists the cluster's members with their last heartbeat.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	return c.c.Members(ctx)
}

// Member returns one member of the cluster.
func (c *Client) Member(ctx context.Context, name string) (Member, error) {
	var out Member
	err := c.c.Do(ctx, http.MethodGet, "/api/cluster/"+url.PathEscape(name), nil, &out)
	return out, err
}

// Join joins a host to the cluster (what testbedos-server client does; the
// client must carry the cluster token or a join token's secret).
func (c *Client) Join(ctx context.Context, req JoinRequest) (JoinAnswer, error) {
	var out JoinAnswer
	err := c.c.Do(ctx, http.MethodPost, "/api/cluster", req, &out)
	return out, err
}

// IssueJoinToken makes a join token for at most uses hosts, valid for ttl
// (a Go duration: "1h").
func (c *Client) IssueJoinToken(ctx context.Context, uses int, ttl string) (JoinToken, error) {
	var out JoinToken
	err := c.c.Do(ctx, http.MethodPost, "/api/cluster/join-tokens", map[string]any{"uses": uses, "ttl": ttl}, &out)
	return out, err
}

// RemoveMember removes a member from the cluster.
func (c *Client) RemoveMember(ctx context.Context, name string) error {
	return c.c.RemoveMember(ctx, name)
}
