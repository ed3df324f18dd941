// Package wsterm carries an interactive terminal over a websocket: binary
// messages are the terminal's bytes both ways, and a text message
// {"type":"resize","cols":N,"rows":N} from the dialing end resizes it. The
// public console API and the agent's console between hosts speak it.
package wsterm

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/coder/websocket"
)

// Resize is the text message that resizes the terminal.
type Resize struct {
	Type string `json:"type"`
	Cols uint16 `json:"cols"`
	Rows uint16 `json:"rows"`
}

// Terminal is the serving end's terminal: what Input types and resizes.
type Terminal interface {
	io.Writer
	Resize(cols, rows uint16) error
}

// Input applies one message of the dialing end to term: a resize, or keys.
// It returns term's error.
func Input(term Terminal, typ websocket.MessageType, data []byte) error {
	if typ == websocket.MessageText && len(data) > 0 && data[0] == '{' {
		var m Resize
		if json.Unmarshal(data, &m) == nil && m.Type == "resize" {
			if m.Cols > 0 && m.Rows > 0 {
				_ = term.Resize(m.Cols, m.Rows)
			}
			return nil
		}
	}
	_, err := term.Write(data)
	return err
}

// CopyOut sends what term shows to conn until one of them ends, and says
// whether it was term (the session ended: the caller closes conn).
func CopyOut(ctx context.Context, conn *websocket.Conn, term io.Reader) (termEnded bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := term.Read(buf)
		if n > 0 {
			if werr := conn.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				return false
			}
		}
		if err != nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// Client is the dialing end's terminal over conn; ctx bounds its reads
// and writes.
type Client struct {
	conn *websocket.Conn
	ctx  context.Context
	rest []byte
}

// NewClient returns the terminal of the dialed conn.
func NewClient(ctx context.Context, conn *websocket.Conn) *Client {
	return &Client{conn: conn, ctx: ctx}
}

// Read reads what the terminal shows; io.EOF once the session ended.
func (c *Client) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		_, data, err := c.conn.Read(c.ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure {
				return 0, io.EOF
			}
			return 0, err
		}
		c.rest = data
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// Write types p into the terminal.
func (c *Client) Write(p []byte) (int, error) {
	if err := c.conn.Write(c.ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Resize tells the terminal its size.
func (c *Client) Resize(cols, rows uint16) error {
	data, _ := json.Marshal(Resize{Type: "resize", Cols: cols, Rows: rows})
	return c.conn.Write(c.ctx, websocket.MessageText, data)
}

// Close ends the session.
func (c *Client) Close() error { return c.conn.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the connection without waiting for the other end.
func (c *Client) CloseNow() error { return c.conn.CloseNow() }
