package testbedos

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/client"
)

// Where Connect looks for a server.
const (
	// DefaultSocket is the server's unix socket (TESTBEDOS_SOCKET).
	DefaultSocket = "/run/testbedos/testbedos.sock"
	// DefaultURL is the server's TCP address (TESTBEDOS_LISTEN).
	DefaultURL = "http://localhost:3355"
)

// Client talks to one testbedos-server. It is safe for concurrent use.
type Client struct {
	c *client.Client
}

// WithToken sends token (the content of <data dir>/config/token) as a
// bearer token: needed over TCP, not over the unix socket.
func WithToken(token string) Option { return client.WithToken(token) }

// WithFingerprint trusts an https:// server only when its certificate has
// this SHA-256 fingerprint (GET /api/config/status shows it).
func WithFingerprint(fp string) Option { return client.WithFingerprint(fp) }

// WithHTTPClient replaces the HTTP client (timeouts, proxies).
func WithHTTPClient(h *http.Client) Option { return client.WithHTTPClient(h) }

// New returns a client of server: "unix:///path/to.sock" (or a plain path
// starting with "/"), "http://host:port" or "https://host:port". It does
// not connect yet.
func New(server string, opts ...Option) (*Client, error) {
	c, err := client.New(server, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Connect returns a client of the first server that answers: the unix
// socket (TESTBEDOS_SOCKET, else DefaultSocket), then DefaultURL with the
// token of TESTBEDOS_TOKEN, else the one in the data folder
// (TESTBEDOS_DATA_DIR, else /var/lib/testbedos: config/token) when this
// user may read it. opts apply to either and come last.
func Connect(ctx context.Context, opts ...Option) (*Client, error) {
	socket := os.Getenv("TESTBEDOS_SOCKET")
	if socket == "" {
		socket = DefaultSocket
	}
	c, err := client.Connect(ctx, []string{"unix://" + socket, DefaultURL}, func(c *client.Client) []Option {
		if !c.IsTCP() {
			return opts
		}
		if tok := localToken(); tok != "" {
			return append([]Option{client.WithToken(tok)}, opts...)
		}
		return opts
	})
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Server is the server this client talks to, as given.
func (c *Client) Server() string { return c.c.Server() }

// StatusOf returns the HTTP status of an error answer of the server, or 0
// for any other error.
func StatusOf(err error) int { return client.StatusOf(err) }

// localToken is TESTBEDOS_TOKEN, else the local server's token file.
func localToken() string {
	if tok := os.Getenv("TESTBEDOS_TOKEN"); tok != "" {
		return tok
	}
	dir := os.Getenv("TESTBEDOS_DATA_DIR")
	if dir == "" {
		dir = "/var/lib/testbedos"
	}
	data, err := os.ReadFile(filepath.Join(dir, "config", "token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
