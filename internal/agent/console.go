package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
	"github.com/testbedos/testbedos/internal/wsterm"
)

// Consoles of client guests: the main's engine calls Console on the proxy
// driver, which opens a websocket to GET /api/agent/console (over the
// cluster's pinned TLS, with the member secret). The main's first message
// (text) is the GuestRequest; the agent opens the client driver's console
// (guest.Consoler) and answers a text ConsoleAnswer. Then binary messages
// carry the terminal both ways, and the main's text messages resize it
// (package wsterm, as the public console API). Either end closing the websocket ends the session.

// ConsoleAnswer is the agent's first message on a console's websocket.
type ConsoleAnswer struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// consoleReadLimit bounds one message of a console's websocket.
const consoleReadLimit = 1 << 20

func (s *server) console(w http.ResponseWriter, r *http.Request) error {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept answered
	}
	defer conn.CloseNow()
	conn.SetReadLimit(consoleReadLimit)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	term, err := s.openConsole(ctx, conn)
	answer := ConsoleAnswer{OK: err == nil}
	if err != nil {
		answer = ConsoleAnswer{Error: err.Error(), Code: codeOf(err)}
	}
	data, _ := json.Marshal(answer)
	if werr := conn.Write(ctx, websocket.MessageText, data); werr != nil || err != nil {
		if term != nil {
			term.Close()
		}
		conn.Close(websocket.StatusNormalClosure, "")
		return nil
	}
	defer term.Close()
	go func() {
		defer cancel()
		wsterm.CopyOut(ctx, conn, term)
		conn.Close(websocket.StatusNormalClosure, "the console ended")
	}()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil || wsterm.Input(term, typ, data) != nil {
			return nil
		}
	}
}

// openConsole reads the main's request and opens the guest's console.
func (s *server) openConsole(ctx context.Context, conn *websocket.Conn) (guest.Terminal, error) {
	_, data, err := conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var req GuestRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("console request: %w", err)
	}
	if !api.ValidName(req.Deployment) || req.Guest.Name == "" {
		return nil, fmt.Errorf("console request: invalid deployment %q or no guest", req.Deployment)
	}
	if s.opts.Drivers == nil {
		return nil, errors.New("this host has no guest drivers")
	}
	drv, err := s.opts.Drivers.Driver(req.Guest.Kind)
	if err != nil {
		return nil, err
	}
	c, err := guest.As[guest.Consoler](drv)
	if err != nil {
		return nil, err
	}
	g, err := s.localGuest(req)
	if err != nil {
		return nil, err
	}
	return c.Console(ctx, s.deployment(req.Deployment, req.Files), g)
}

var _ guest.Consoler = (*proxyDriver)(nil)

// Console implements guest.Consoler: a terminal whose screen and keys go
// over a websocket to the client's driver's console. ctx bounds the
// session.
func (p *proxyDriver) Console(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Terminal, error) {
	u := *p.h.base
	u.Path = strings.TrimSuffix(u.Path, "/") + Prefix + "console"
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	dctx, cancel := withTimeout(ctx, p.h.opts.Timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{
		HTTPClient: p.h.opts.Client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + p.h.opts.Secret}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("host %s: console: %w", p.h.Name(), ErrUnauthorized)
		}
		return nil, p.h.unreachable(dctx, http.MethodGet, "console", err)
	}
	conn.SetReadLimit(consoleReadLimit)
	if err := p.openRemote(dctx, conn, GuestRequest{Deployment: dep.Name, Guest: *g}); err != nil {
		conn.CloseNow()
		return nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	return remoteTerminal{Client: wsterm.NewClient(tctx, conn), cancel: cancel}, nil
}

// openRemote sends the console request and reads the agent's answer.
func (p *proxyDriver) openRemote(ctx context.Context, conn *websocket.Conn, req GuestRequest) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := conn.Write(ctx, websocket.MessageText, data); err != nil {
		return p.h.unreachable(ctx, http.MethodGet, "console", err)
	}
	_, data, err = conn.Read(ctx)
	if err != nil {
		return p.h.unreachable(ctx, http.MethodGet, "console", err)
	}
	var answer ConsoleAnswer
	if err := json.Unmarshal(data, &answer); err != nil {
		return p.h.unreachable(ctx, http.MethodGet, "console", fmt.Errorf("answer: %w", err))
	}
	if !answer.OK {
		return newRemoteError(p.h.Name(), "console: "+answer.Error, answer.Code)
	}
	return nil
}

// remoteTerminal is a client guest's console on the main; Close also
// ends the context of its reads and writes.
type remoteTerminal struct {
	*wsterm.Client
	cancel context.CancelFunc
}

var _ guest.Terminal = remoteTerminal{}

// Close implements io.Closer: it drops the websocket, which ends the
// session on the client, without waiting for a client that does not
// answer (the main's console closes within a grace).
func (t remoteTerminal) Close() error {
	t.cancel()
	return t.Client.CloseNow()
}
