package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/api"
)

// ErrEventsLost: the server dropped the event stream because it was read
// too slowly; events were lost.
var ErrEventsLost = errors.New("event stream dropped by the server: events were lost")

// ErrServerStopped: the server closed the event stream because it shuts down.
var ErrServerStopped = errors.New("the server is shutting down")

// Events subscribes to /api/events and calls fn with every event and its
// JSON as received, until ctx ends (it then returns ctx.Err()), fn returns
// an error (returned as is) or the server closes the stream
// (ErrServerStopped when it shuts down, ErrEventsLost when it dropped a
// slow reader).
func (c *Client) Events(ctx context.Context, fn func(e api.Event, raw json.RawMessage) error) error {
	wsURL := strings.Replace(c.base, "http", "ws", 1) + "/api/events"
	if c.tlsErr != nil {
		return c.tlsErr
	}
	header := http.Header{}
	if c.token != "" {
		header.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return &Error{Status: resp.StatusCode, Message: "cannot subscribe to events"}
		}
		return fmt.Errorf("subscribe to events: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure:
				return ErrServerStopped
			case errors.As(err, &ce) && ce.Code == websocket.StatusTryAgainLater:
				return ErrEventsLost
			}
			return fmt.Errorf("event stream: %w", err)
		}
		var e api.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("event stream: bad event %.200q: %w", data, err)
		}
		if err := fn(e, data); err != nil {
			conn.Close(websocket.StatusNormalClosure, "")
			return err
		}
	}
}
