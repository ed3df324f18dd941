package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/api"
)

// ErrStreamBroken: the log stream ended without an outcome (the server went
// away, or failed to read the log).
var ErrStreamBroken = errors.New("log stream ended without an outcome")

// statusActionGone is the close code of a stream whose action was deleted
// while it was followed.
const statusActionGone = websocket.StatusCode(api.CloseActionGone)

// Follow streams the log of action uuid: onLine gets every line so far and
// every new one, and Follow returns the outcome carried by the final close
// frame.
func (c *Client) Follow(ctx context.Context, uuid string, onLine func(line string)) (api.Outcome, error) {
	wsURL := strings.Replace(c.base, "http", "ws", 1) + "/api/logs/" + url.PathEscape(uuid) + "/stream"
	if c.tlsErr != nil {
		return api.Outcome{}, c.tlsErr
	}
	header := http.Header{}
	if c.token != "" {
		header.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return api.Outcome{}, &Error{Status: resp.StatusCode, Message: "cannot follow log " + uuid}
		}
		return api.Outcome{}, fmt.Errorf("follow log %s: %w", uuid, err)
	}
	defer conn.CloseNow()
	// A log line has at most 64 KiB of text plus its timestamp and prefix
	// (logstream.MaxMessage); the limit leaves room to spare.
	conn.SetReadLimit(1 << 20)
	for {
		_, data, err := conn.Read(ctx)
		if err == nil {
			onLine(string(data))
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure {
			var o api.Outcome
			if jerr := json.Unmarshal([]byte(ce.Reason), &o); jerr != nil {
				return o, fmt.Errorf("follow log %s: bad outcome %q: %w", uuid, ce.Reason, jerr)
			}
			return o, nil
		}
		if errors.As(err, &ce) && ce.Code == statusActionGone {
			return api.Outcome{}, &Error{Status: http.StatusNotFound, Message: ce.Reason}
		}
		if ctx.Err() != nil {
			return api.Outcome{}, ctx.Err()
		}
		return api.Outcome{}, fmt.Errorf("%w: %v", ErrStreamBroken, err)
	}
}
