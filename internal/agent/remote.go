package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
)

// RemoteOptions configure a RemoteHost.
type RemoteOptions struct {
	// Name is the client host's name in the cluster.
	Name string
	// BaseURL is where its agent API listens (https://ip:port); the
	// paths /api/agent/… are added.
	BaseURL string
	// Secret is the member secret sent on every call.
	Secret string
	// Client makes the calls; the caller configures pinned TLS. Default
	// http.DefaultClient (tests).
	Client *http.Client
	// Timeout bounds every call that is not a stream or a file upload;
	// default 15 s.
	Timeout time.Duration
	// IdleTimeout is the longest a guest call's stream may stay silent
	// (the client sends keep-alive lines); default 60 s.
	IdleTimeout time.Duration
	// TransferTimeout bounds one file upload; default 30 min.
	TransferTimeout time.Duration
	// CapabilitiesTTL is how long the client's driver list is reused;
	// default 30 s.
	CapabilitiesTTL time.Duration
}

// RemoteHost is a client host as the engine on the main drives it: every
// call goes to its agent API.
type RemoteHost struct {
	opts RemoteOptions
	base *url.URL

	hashes hashCache

	pushMu  sync.Mutex
	pushing map[string]*sync.Mutex // by sha256: one upload of a file at a time

	capsMu sync.Mutex
	caps   *Capabilities
	capsAt time.Time
}

var _ engine.Host = (*RemoteHost)(nil)

// NewRemoteHost returns the client host opts describes.
func NewRemoteHost(opts RemoteOptions) (*RemoteHost, error) {
	base, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("agent URL %q: want scheme://host:port", opts.BaseURL)
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	if opts.TransferTimeout <= 0 {
		opts.TransferTimeout = 30 * time.Minute
	}
	if opts.CapabilitiesTTL <= 0 {
		opts.CapabilitiesTTL = 30 * time.Second
	}
	return &RemoteHost{opts: opts, base: base, pushing: map[string]*sync.Mutex{}, hashes: hashCache{m: map[string]hashEntry{}}}, nil
}

// Name implements engine.Host.
func (h *RemoteHost) Name() string { return h.opts.Name }

// Network implements engine.Host.
func (h *RemoteHost) Network() engine.Network { return remoteNetwork{h} }

// Files implements engine.Host: the files of the project folder on the
// main, pushed to the client as its drivers need them.
func (h *RemoteHost) Files(project string) guest.Files { return &remoteFiles{h: h, project: project} }

// Driver implements engine.Host: a proxy for the client's driver of kind.
func (h *RemoteHost) Driver(kind string) (guest.Driver, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	defer cancel()
	caps, err := h.capabilities(ctx)
	if err != nil {
		return nil, err
	}
	c, ok := caps.Kinds[kind]
	if !ok {
		kinds := sortedKeys(caps.Kinds)
		return nil, fmt.Errorf("host %s has no driver for guest kind %q (have %v)", h.Name(), kind, kinds)
	}
	// Snapshots, power, exec and the console are proxied; artefacts are
	// not (they would have to be written on the client at
	// generate-artefacts), so they are not claimed.
	proxied := guest.Capabilities{Snapshots: c.Snapshots, Find: c.Find, Power: c.Power, Exec: c.Exec, Console: c.Console}
	return &proxyDriver{h: h, kind: kind, caps: proxied, remote: c}, nil
}

func (h *RemoteHost) capabilities(ctx context.Context) (*Capabilities, error) {
	h.capsMu.Lock()
	defer h.capsMu.Unlock()
	if h.caps != nil && time.Since(h.capsAt) < h.opts.CapabilitiesTTL {
		return h.caps, nil
	}
	var c Capabilities
	if err := h.callJSON(ctx, http.MethodGet, "capabilities", nil, &c); err != nil {
		return nil, err
	}
	h.caps, h.capsAt = &c, time.Now()
	return &c, nil
}

// Health asks the client host for its health.
func (h *RemoteHost) Health(ctx context.Context) (Health, error) {
	var out Health
	err := h.callJSON(ctx, http.MethodGet, "health", nil, &out)
	return out, err
}

// Deployed is the client host's own record of what it made for deployment.
func (h *RemoteHost) Deployed(ctx context.Context, deployment string) (*Deployed, error) {
	var out Deployed
	if err := h.callJSON(ctx, http.MethodGet, "deployed/"+url.PathEscape(deployment), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Deployments lists the deployments the client host has a record of (to
// clean those the main no longer knows, after it comes back).
func (h *RemoteHost) Deployments(ctx context.Context) ([]string, error) {
	var out struct {
		Deployments []string `json:"deployments"`
	}
	err := h.callJSON(ctx, http.MethodGet, "deployed", nil, &out)
	return out.Deployments, err
}

// Clean makes the client host remove everything its own record holds for
// deployment; its lines go into log prefixed with the host's name.
func (h *RemoteHost) Clean(ctx context.Context, deployment string, log actlog.Log) error {
	_, err := h.stream(ctx, "deployed/"+url.PathEscape(deployment)+"/clean", struct{}{}, log)
	return err
}

// request makes one call with the member secret; a transport error wraps
// ErrUnreachable unless ctx, the caller's, ended it.
func (h *RemoteHost) request(ctx context.Context, method, path string, body io.Reader, size int64, header http.Header) (*http.Response, error) {
	u := h.base.JoinPath("/api/agent", path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Authorization", "Bearer "+h.opts.Secret)
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return nil, h.unreachable(ctx, method, path, err)
	}
	return resp, nil
}

func (h *RemoteHost) unreachable(ctx context.Context, method, path string, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, errCallTimeout) {
		return fmt.Errorf("host %s: %s %s: %w", h.Name(), method, path, cause)
	}
	return fmt.Errorf("host %s: %s %s: %w: %w", h.Name(), method, path, ErrUnreachable, err)
}

// errCallTimeout is the cause of a call's own timeout (not the caller's).
var errCallTimeout = errors.New("agent call timed out")

// withTimeout bounds one call.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, errCallTimeout)
}

// callJSON makes a short call with a JSON body (nil: none) and decodes a
// JSON answer into out (nil: ignored).
func (h *RemoteHost) callJSON(ctx context.Context, method, path string, in, out any) error {
	return h.callJSONWithin(ctx, h.opts.Timeout, method, path, in, out)
}

// callJSONWithin is callJSON bounded by timeout.
func (h *RemoteHost) callJSONWithin(ctx context.Context, timeout time.Duration, method, path string, in, out any) error {
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	size := int64(-1)
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, size = bytes.NewReader(data), int64(len(data))
	}
	resp, err := h.request(ctx, method, path, body, size, http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return h.answerError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return h.unreachable(ctx, method, path, fmt.Errorf("answer: %w", err))
	}
	return nil
}

// answerError is the error of a non-2xx answer.
func (h *RemoteHost) answerError(resp *http.Response) error {
	var body errorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(string(data))
	}
	err := newRemoteError(h.Name(), fmt.Sprintf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, body.Error), body.Code)
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return err
}

// remoteNetwork is the client host's network through its agent API.
type remoteNetwork struct{ h *RemoteHost }

func bridgePath(kind, name string) string { return kind + "/" + url.PathEscape(name) }

// HasBridge implements engine.Network.
func (n remoteNetwork) HasBridge(ctx context.Context, name string) (bool, error) {
	var out struct {
		Exists bool `json:"exists"`
	}
	err := n.h.callJSON(ctx, http.MethodGet, bridgePath("bridges", name), nil, &out)
	return out.Exists, err
}

// EnsureBridge implements engine.Network.
func (n remoteNetwork) EnsureBridge(ctx context.Context, name string) (bool, error) {
	var out struct {
		Created bool `json:"created"`
	}
	err := n.h.callJSON(ctx, http.MethodPost, bridgePath("bridges", name), nil, &out)
	return out.Created, err
}

// DeleteBridge implements engine.Network.
func (n remoteNetwork) DeleteBridge(ctx context.Context, name string) error {
	return n.h.callJSON(ctx, http.MethodDelete, bridgePath("bridges", name), nil, nil)
}

// AllowBridge implements engine.Network.
func (n remoteNetwork) AllowBridge(ctx context.Context, name string) error {
	return n.h.callJSON(ctx, http.MethodPost, bridgePath("firewall", name), nil, nil)
}

// RemoveBridge implements engine.Network.
func (n remoteNetwork) RemoveBridge(ctx context.Context, name string) error {
	return n.h.callJSON(ctx, http.MethodDelete, bridgePath("firewall", name), nil, nil)
}
