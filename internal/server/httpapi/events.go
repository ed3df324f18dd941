package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/events"
)

// eventStream is the websocket GET /api/events: one JSON text
// message per event from the moment of the handshake, until the client
// leaves or the server shuts down (a normal close frame). A client that
// falls behind is closed with 1013 (try again later): it lost events and
// should read the state afresh before subscribing again.
func eventStream(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := checkHandshake(w, r); err != nil {
			return err
		}
		if d.Events == nil {
			return errors.New("this server publishes no events")
		}
		// Subscribed before the handshake ends: a client that saw the 101
		// misses nothing published after it.
		sub := d.Events.Subscribe()
		defer sub.Close()
		if d.StreamOpened != nil {
			if err := d.StreamOpened(); err != nil {
				return err
			}
			defer d.StreamClosed()
		}
		conn, err := acceptStream(w, r)
		if err != nil {
			return nil // Accept has answered the client already
		}
		defer conn.CloseNow()
		ctx, cancel := untilCredentialEnds(conn.CloseRead(r.Context()), r)
		defer cancel()
		for {
			select {
			case <-ctx.Done():
				if credentialEnded(r) {
					closeCredentialEnded(conn)
				}
				return nil
			case e, ok := <-sub.C:
				if !ok {
					if errors.Is(sub.Err(), events.ErrTooSlow) {
						conn.Close(websocket.StatusTryAgainLater, "too slow: events were lost; read the state again and resubscribe")
					} else {
						conn.Close(websocket.StatusNormalClosure, "the server is shutting down")
					}
					return nil
				}
				data, err := json.Marshal(e)
				if err != nil {
					d.Logger.Error("encoding an event", "type", e.Type, "err", err)
					continue
				}
				wctx, cancel := context.WithTimeout(ctx, writeTimeout)
				err = conn.Write(wctx, websocket.MessageText, data)
				cancel()
				if err != nil {
					return nil
				}
			}
		}
	}
}
