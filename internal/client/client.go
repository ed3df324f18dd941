// Package client is the typed Go SDK of the TestbedOS REST API and log
// stream. The CLI and the tests use it; it speaks HTTP over TCP or over the
// server's unix socket.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// Client talks to one server.
type Client struct {
	server  string // as given to New, for messages
	network string // "unix" or "tcp": what Probe dials
	address string
	base    string // http://host:port, or http://unix for the socket
	http    *http.Client
	token   string
	// fingerprint pins an https server's certificate.
	fingerprint string
	tlsErr      error
}

// Option changes a Client.
type Option func(*Client)

// WithToken sends token as a Bearer header on every request.
func WithToken(token string) Option { return func(c *Client) { c.token = strings.TrimSpace(token) } }

// WithHTTPClient replaces the HTTP client (its transport is kept for
// unix-socket connections).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithFingerprint trusts an https:// server only when its certificate has
// this fingerprint (tlsid.ParseFingerprint's forms): TestbedOS servers have
// self-signed certificates, pinned instead of checked against a CA.
func WithFingerprint(fp string) Option {
	return func(c *Client) {
		c.fingerprint = fp
		if strings.HasPrefix(c.server, "https://") {
			c.pin()
		}
	}
}

// ErrFingerprint: the https server's certificate is not the pinned one, or
// no fingerprint was given for an https server.
var ErrFingerprint = errors.New("server certificate not trusted")

// New connects to server: "http://host:port", "https://…", "unix:///path" or
// a plain socket path starting with "/".
func New(server string, opts ...Option) (*Client, error) {
	c := &Client{server: server}
	switch {
	case strings.HasPrefix(server, "unix://") || strings.HasPrefix(server, "/"):
		path := strings.TrimPrefix(server, "unix://")
		var d net.Dialer
		c.network, c.address = "unix", path
		c.base = "http://unix"
		c.http = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			},
		}}
	case strings.HasPrefix(server, "http://") || strings.HasPrefix(server, "https://"):
		u, err := url.Parse(server)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("server connection %q: want http://host:port or unix:///path", server)
		}
		c.network, c.address = "tcp", u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			c.address = net.JoinHostPort(u.Hostname(), port)
		}
		c.base = strings.TrimRight(u.String(), "/")
		c.http = &http.Client{}
	default:
		return nil, fmt.Errorf("server connection %q: want http://host:port or unix:///path", server)
	}
	for _, o := range opts {
		o(c)
	}
	if strings.HasPrefix(server, "https://") && c.fingerprint == "" {
		c.pin()
	}
	return c, nil
}

// pin makes the https transport trust only c.fingerprint; without one every
// request fails with ErrFingerprint (sent only when used, so that Connect
// can still try the server and report it).
func (c *Client) pin() {
	c.tlsErr = nil
	if c.fingerprint == "" {
		c.tlsErr = fmt.Errorf("%w: %s is https and no fingerprint was given: set TESTBEDOS_SERVER_FINGERPRINT to the server's (GET /api/config/status shows it), or TESTBEDOS_DATA_DIR to its data folder on this host", ErrFingerprint, c.server)
		return
	}
	fp, err := tlsid.ParseFingerprint(c.fingerprint)
	if err != nil {
		c.tlsErr = fmt.Errorf("%w: %w", ErrFingerprint, err)
		return
	}
	t, ok := c.http.Transport.(*http.Transport)
	if !ok || t == nil {
		t = http.DefaultTransport.(*http.Transport)
	}
	t = t.Clone()
	t.TLSClientConfig = tlsid.ClientConfig(fp, nil)
	h := *c.http
	h.Transport = t
	c.http = &h
}

// Server is the connection this client was made for, as given to New.
func (c *Client) Server() string { return c.server }

// IsTCP reports whether the client speaks TCP (where the server wants a
// token) rather than the unix socket (where it does not).
func (c *Client) IsTCP() bool { return c.network == "tcp" }

// ErrUnreachable: no server accepted a connection.
var ErrUnreachable = errors.New("no server answers")

// probeTimeout bounds one Probe: a local server accepts at once, and a
// remote one that takes longer than this is as good as down.
const probeTimeout = 5 * time.Second

// Probe opens and closes one connection to the server, telling a server
// that answers from a stale socket (left by a killed server), a missing one
// or a stopped server.
func (c *Client) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return fmt.Errorf("%s: %w", c.server, err)
	}
	return conn.Close()
}

// UnreachableError lists the servers Connect tried and why each failed.
type UnreachableError struct {
	Tried []string
	Errs  []error
}

func (e *UnreachableError) Error() string {
	var b strings.Builder
	b.WriteString(ErrUnreachable.Error())
	b.WriteString(": tried ")
	for i, s := range e.Tried {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", s, dialReason(e.Errs[i]))
	}
	return b.String()
}

func (e *UnreachableError) Unwrap() error { return ErrUnreachable }

// dialReason says in a few words why a dial failed.
func dialReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, fs.ErrNotExist):
		return "no such socket"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied: join the socket's group or use TCP"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within " + probeTimeout.String()
	}
	return err.Error()
}

// Connect returns a client of the first of servers that accepts a
// connection, in order; optsFor gives each its options (a token only over
// TCP, say). When none answers the error is an *UnreachableError.
func Connect(ctx context.Context, servers []string, optsFor func(*Client) []Option) (*Client, error) {
	ue := &UnreachableError{}
	for _, s := range servers {
		c, err := New(s)
		if err != nil {
			return nil, err
		}
		if err := c.Probe(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ue.Tried, ue.Errs = append(ue.Tried, s), append(ue.Errs, err)
			continue
		}
		if optsFor != nil {
			for _, o := range optsFor(c) {
				o(c)
			}
		}
		return c, nil
	}
	return nil, ue
}

// Error is an error answer of the server.
type Error struct {
	Status  int
	Message string
	// Body is the answer as it came (at most 1 MiB): some carry more than
	// the message (POST /api/validate/yaml's problems).
	Body []byte
}

func (e *Error) Error() string { return fmt.Sprintf("server: %s (%d)", e.Message, e.Status) }

// StatusOf returns the HTTP status of an error answer, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// maxAnswer bounds the JSON answers read whole; a log is streamed instead.
const maxAnswer = 64 << 20

// send makes a request and returns the response of a successful one; an
// error answer becomes an *Error.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	contentType := "application/json"
	if raw, ok := body.(rawBody); ok {
		rd, contentType = raw.r, raw.contentType
	} else if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.tlsErr != nil {
		return nil, c.tlsErr
	}
	resp, err := c.http.Do(req)
	if errors.Is(err, tlsid.ErrFingerprintMismatch) {
		return nil, fmt.Errorf("%w: %s: %w; TESTBEDOS_SERVER_FINGERPRINT (or the certificate of TESTBEDOS_DATA_DIR) names another server, or the server made a new certificate", ErrFingerprint, c.server, err)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach the server: %w", err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			return nil, &Error{Status: resp.StatusCode, Message: eb.Error.Message, Body: data}
		}
		return nil, &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(data)), Body: data}
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return err
	}
	if len(data) > maxAnswer {
		return fmt.Errorf("%s %s: the answer is larger than %d MiB", method, path, maxAnswer>>20)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	default:
		return json.Unmarshal(data, out)
	}
}

// Deployments lists the deployments by name.
func (c *Client) Deployments(ctx context.Context) (map[string]api.Deployment, error) {
	var out api.DeploymentList
	err := c.do(ctx, http.MethodGet, "/api/deployments", nil, &out)
	return out.Deployments, err
}

// Deployment returns one deployment.
func (c *Client) Deployment(ctx context.Context, name string) (api.Deployment, error) {
	var out api.Deployment
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name), nil, &out)
	return out, err
}

// CreateDeployment adds a deployment of the project folder projectLocation.
func (c *Client) CreateDeployment(ctx context.Context, name, projectLocation string) (api.Deployment, error) {
	var out api.Deployment
	err := c.do(ctx, http.MethodPost, "/api/deployments", api.NewDeployment{Name: name, ProjectLocation: projectLocation}, &out)
	return out, err
}

// UpdateDeployment moves a deployment to another project folder.
func (c *Client) UpdateDeployment(ctx context.Context, name, projectLocation string) (api.Deployment, error) {
	var out api.Deployment
	err := c.do(ctx, http.MethodPut, "/api/deployments/"+url.PathEscape(name), api.UpdateDeployment{ProjectLocation: projectLocation}, &out)
	return out, err
}

// DeleteDeployment forgets a deployment; force deletes one that is not down.
func (c *Client) DeleteDeployment(ctx context.Context, name string, force bool) error {
	path := "/api/deployments/" + url.PathEscape(name)
	if force {
		path += "?force=true"
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// Action starts an action and returns its uuid.
func (c *Client) Action(ctx context.Context, name string, req api.ActionRequest) (string, error) {
	var out api.ActionAccepted
	err := c.do(ctx, http.MethodPost, "/api/deployments/"+url.PathEscape(name)+"/action", req, &out)
	return out.UUID, err
}

// Cancel asks the running action of a deployment to stop and returns its
// uuid. With a non-empty uuid only that action is cancelled: when another
// one runs (or none), the server answers 409 and nothing is cancelled.
func (c *Client) Cancel(ctx context.Context, name, uuid string) (string, error) {
	var out api.ActionAccepted
	var body any
	if uuid != "" {
		body = api.CancelRequest{UUID: uuid}
	}
	err := c.do(ctx, http.MethodPost, "/api/deployments/"+url.PathEscape(name)+"/cancel", body, &out)
	return out.UUID, err
}

// State returns the deployment's artefacts/state.json as raw JSON.
func (c *Client) State(ctx context.Context, name string) (json.RawMessage, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/state", nil, &out)
	return out, err
}

// Snapshots lists the snapshots of a guest of a deployment, oldest first.
func (c *Client) Snapshots(ctx context.Context, name, guest string) ([]api.Snapshot, error) {
	var out api.SnapshotList
	err := c.do(ctx, http.MethodGet, snapshotsPath(name, guest), nil, &out)
	return out.Snapshots, err
}

// Snapshot describes one snapshot of a guest of a deployment.
func (c *Client) Snapshot(ctx context.Context, name, guest, snapshot string) (api.Snapshot, error) {
	var out api.Snapshot
	err := c.do(ctx, http.MethodGet, snapshotsPath(name, guest)+"/"+url.PathEscape(snapshot), nil, &out)
	return out, err
}

func snapshotsPath(name, guest string) string {
	return "/api/deployments/" + url.PathEscape(name) + "/guests/" + url.PathEscape(guest) + "/snapshots"
}

// Logs returns the logs index of a deployment.
func (c *Client) Logs(ctx context.Context, name string) (api.LogIndex, error) {
	var out api.LogIndex
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/logs", nil, &out)
	return out, err
}

// LogEntry returns one action's record.
func (c *Client) LogEntry(ctx context.Context, uuid string) (api.LogEntry, error) {
	var out api.LogEntry
	err := c.do(ctx, http.MethodGet, "/api/logs/"+url.PathEscape(uuid), nil, &out)
	return out, err
}

// OpenLog streams one action's whole log so far, however large. Reading it
// fails (rather than ending early) if the transfer breaks off.
func (c *Client) OpenLog(ctx context.Context, uuid string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/logs/"+url.PathEscape(uuid)+"/text", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// LogText returns one action's whole log so far.
func (c *Client) LogText(ctx context.Context, uuid string) (string, error) {
	r, err := c.OpenLog(ctx, uuid)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var b strings.Builder
	_, err = io.Copy(&b, r)
	return b.String(), err
}

// Status returns the server's status.
func (c *Client) Status(ctx context.Context) (api.ServerStatus, error) {
	var out api.ServerStatus
	err := c.do(ctx, http.MethodGet, "/api/config/status", nil, &out)
	return out, err
}

// WaitReady polls /healthz until the server answers or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		err := c.do(ctx, http.MethodGet, "/healthz", nil, nil)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server not ready: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Members lists the cluster's members (GET /api/cluster).
func (c *Client) Members(ctx context.Context) ([]api.Member, error) {
	var out api.MemberList
	err := c.do(ctx, http.MethodGet, "/api/cluster", nil, &out)
	return out.Members, err
}

// ClusterConfig is the main's kvm-compose-config.json without secrets.
func (c *Client) ClusterConfig(ctx context.Context) (api.ClusterConfig, error) {
	var out api.ClusterConfig
	err := c.do(ctx, http.MethodGet, "/api/config/cluster", nil, &out)
	return out, err
}

// RemoveMember removes a member from the cluster (DELETE /api/cluster/{name}).
func (c *Client) RemoveMember(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/cluster/"+url.PathEscape(name), nil, nil)
}
