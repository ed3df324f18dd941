package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// ErrPeerStatus is an answer of a peer with an unexpected status; errors.As
// to *StatusError for the code.
var ErrPeerStatus = errors.New("unexpected answer")

// StatusError is a peer's error answer.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }
func (e *StatusError) Unwrap() error { return ErrPeerStatus }

// statusOf is the HTTP status of a peer's error answer, 0 for other errors.
func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// pinnedClient speaks HTTPS to one peer whose certificate has fingerprint
// pin, presenting own as the client certificate. It keeps its connection
// between heartbeats: a TLS handshake per beat costs the main more CPU than
// everything else it does for a member.
func pinnedClient(pin string, own *tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     tlsid.ClientConfig(pin, own),
		Proxy:               nil,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     5 * time.Minute,
	}}
}

// call sends one JSON request with a bearer token and decodes the answer
// into out (when non-nil).
func call(ctx context.Context, c *http.Client, method, url, bearer string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb api.ErrorBody
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			msg = eb.Error.Message
		}
		return &StatusError{Code: resp.StatusCode, Message: msg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	return nil
}

// HealthChecker is the main's Checker: GET <member url>/api/agent/health
// pinned to the member's certificate, with the member secret, presenting
// the main's own certificate. It keeps one client per member certificate
// and address, so beats reuse their connection.
type HealthChecker struct {
	Own *tls.Certificate

	mu      sync.Mutex
	clients map[string]*http.Client // fingerprint + " " + url
}

// NewHealthChecker is a HealthChecker presenting own.
func NewHealthChecker(own *tls.Certificate) *HealthChecker { return &HealthChecker{Own: own} }

func (h *HealthChecker) client(m api.Member) *http.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients == nil {
		h.clients = map[string]*http.Client{}
	}
	key := m.Fingerprint + " " + m.URL
	c, ok := h.clients[key]
	if !ok {
		c = pinnedClient(m.Fingerprint, h.Own)
		h.clients[key] = c
	}
	return c
}

// Forget drops the connection kept for m (a member that left or was lost).
func (h *HealthChecker) Forget(m api.Member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := m.Fingerprint + " " + m.URL
	if c, ok := h.clients[key]; ok {
		c.CloseIdleConnections()
		delete(h.clients, key)
	}
}

// Check implements Checker. A failed check closes the kept connection, so
// the next one starts afresh.
func (h *HealthChecker) Check(ctx context.Context, m api.Member, secret string) error {
	var out api.AgentHealth
	c := h.client(m)
	if err := call(ctx, c, http.MethodGet, strings.TrimRight(m.URL, "/")+"/api/agent/health", secret, nil, &out); err != nil {
		c.CloseIdleConnections()
		return err
	}
	if out.Name != m.Name {
		return fmt.Errorf("%w: the host at %s is %q, not %q", ErrPeerStatus, m.URL, out.Name, m.Name)
	}
	return nil
}
