package httpapi

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wsStream is an accepted websocket whose close never takes longer than a
// grace. The library's Close waits up to 5 s for the client to answer
// the close frame, and once one Close has begun another (or CloseNow)
// waits for it too; a client that does not read (an idle terminal, a
// stalled browser tab) would hold the handler, and the server's
// shutdown, that long. wsStream keeps the hijacked connection so that it
// can drop it when the grace is over.
type wsStream struct {
	*websocket.Conn
	tap *hijackTap
}

// acceptStream completes the websocket handshake. On error the client
// has had its answer already.
func acceptStream(w http.ResponseWriter, r *http.Request) (*wsStream, error) {
	tap := &hijackTap{ResponseWriter: w}
	conn, err := websocket.Accept(tap, r, nil)
	if err != nil {
		return nil, err
	}
	return &wsStream{Conn: conn, tap: tap}, nil
}

// normalCloseGrace is how long a close at the end of a stream waits for
// the client's answer: a client that reads answers at once.
const normalCloseGrace = 2 * time.Second

// closeGrace is how long a close at shutdown or at the end of a session
// waits for the client's answer.
const closeGrace = 500 * time.Millisecond

// Close sends the close frame and waits at most normalCloseGrace for the
// client's answer.
func (s *wsStream) Close(code websocket.StatusCode, reason string) error {
	return s.closeWithin(code, reason, normalCloseGrace)
}

// closeWithin sends the close frame and waits at most grace for the
// client's answer, then drops the connection.
func (s *wsStream) closeWithin(code websocket.StatusCode, reason string, grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- s.Conn.Close(code, reason) }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		s.tap.drop()
		return <-done
	}
}

// hijackTap keeps the connection websocket.Accept hijacks.
type hijackTap struct {
	http.ResponseWriter
	mu   sync.Mutex
	conn net.Conn
}

func (h *hijackTap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.mu.Lock()
		h.conn = c
		h.mu.Unlock()
	}
	return c, brw, err
}

// drop closes the hijacked connection under whatever is using it.
func (h *hijackTap) drop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		_ = h.conn.Close()
	}
}
