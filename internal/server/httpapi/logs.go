package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/api"
)

func logEntry(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		e, err := d.Store.LogEntry(r.Context(), r.PathValue("uuid"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, e)
		return nil
	}
}

func logText(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		e, err := d.Store.LogEntry(r.Context(), r.PathValue("uuid"))
		if err != nil {
			return err
		}
		f, err := os.Open(e.LogPath)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		// The log so far, streamed: its length says where it ends, so a
		// transfer that breaks off is an error for the client, not a short
		// log.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		_, err = io.CopyN(w, f, fi.Size())
		if err != nil {
			d.Logger.Warn("sending log text", "uuid", r.PathValue("uuid"), "err", err)
		}
		return nil
	}
}

// StatusActionGone closes a stream whose action was deleted meanwhile.
const StatusActionGone = websocket.StatusCode(api.CloseActionGone)

// writeTimeout bounds one message to a follower; a follower that cannot take
// a line for this long is dropped.
const writeTimeout = 30 * time.Second

// logStream is the log's websocket: every line so far, each new line as
// it is written, then a close frame whose reason is the api.Outcome JSON.
func logStream(d Deps) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("uuid")
		e, err := d.Store.LogEntry(r.Context(), id)
		if err != nil {
			return err
		}
		if err := checkHandshake(w, r); err != nil {
			return err
		}
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
		// Nothing is read from the client; CloseRead notices when it leaves.
		ctx, cancel := untilCredentialEnds(conn.CloseRead(r.Context()), r)
		defer cancel()
		err = d.Hub.Follow(ctx, e.LogPath, func(line string) error {
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			defer cancel()
			// A text frame must be UTF-8 (a browser fails the connection
			// otherwise); guests' output need not be.
			return conn.Write(wctx, websocket.MessageText, []byte(strings.ToValidUTF8(line, "\uFFFD")))
		})
		if err != nil {
			if credentialEnded(r) {
				closeCredentialEnded(conn)
				return nil
			}
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				d.Logger.Warn("log stream ended early", "uuid", id, "err", err)
				conn.Close(websocket.StatusInternalError, "reading the log failed")
			}
			return nil
		}
		if !e.Finished() {
			e, err = d.Store.LogEntry(context.WithoutCancel(ctx), id)
			if errors.Is(err, api.ErrNotFound) {
				// Its deployment was deleted while we streamed.
				conn.Close(StatusActionGone, "the action was deleted with its deployment")
				return nil
			}
			if err != nil || !e.Finished() {
				conn.Close(websocket.StatusInternalError, "the action's outcome is unknown")
				return nil
			}
		}
		conn.Close(websocket.StatusNormalClosure, closeReason(api.Outcome{ErrorCode: *e.ErrorCode, EndState: *e.EndState}))
		return nil
	}
}

// maxCloseReason is the most a websocket close frame's reason can hold.
const maxCloseReason = 123

// closeReason is the outcome as JSON; should a failed command's options make
// it too long, they are left out.
func closeReason(o api.Outcome) string {
	reason, _ := json.Marshal(o)
	if len(reason) > maxCloseReason && o.EndState.Failed != nil {
		short := api.Command{Name: o.EndState.Failed.Name}
		short.Snapshot.SubCommand = o.EndState.Failed.Snapshot.SubCommand
		o.EndState = api.FailedState(short)
		reason, _ = json.Marshal(o)
	}
	return string(reason)
}

// checkHandshake answers, in the JSON error shape, what websocket.Accept
// would refuse in plain text: a request that is no websocket handshake, a
// bad one, or one from another origin.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		return errorf(http.StatusUpgradeRequired, nil, "this route is a websocket: send Connection: Upgrade and Upgrade: websocket")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return errorf(http.StatusBadRequest, nil, "unsupported Sec-WebSocket-Version: want 13")
	}
	if key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key")); err != nil || len(key) != 16 {
		return errorf(http.StatusBadRequest, nil, "missing or malformed Sec-WebSocket-Key")
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errorf(http.StatusForbidden, nil, fmt.Sprintf("websocket from origin %q refused: only the server's own pages may follow logs", origin))
		}
	}
	return nil
}

// headerHas reports whether the comma-separated header holds token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
