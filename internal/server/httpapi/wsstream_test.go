package httpapi

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestStreamCloseDoesNotWaitForASilentClient: a client that never reads
// cannot answer the close frame; two closes racing (the terminal ending
// and the shutdown) still end within the grace, not the library's 5 s.
func TestStreamCloseDoesNotWaitForASilentClient(t *testing.T) {
	closed := make(chan time.Duration, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := acceptStream(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.CloseNow()
		start := time.Now()
		go conn.Close(websocket.StatusNormalClosure, "the console ended")
		time.Sleep(10 * time.Millisecond)
		_ = conn.closeWithin(websocket.StatusGoingAway, "the server is shutting down", closeGrace)
		closed <- time.Since(start)
	}))
	t.Cleanup(srv.Close)

	// A raw client: it sends the handshake and then reads nothing.
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	select {
	case took := <-closed:
		if took > normalCloseGrace+time.Second {
			t.Fatalf("closing took %v with a client that does not read", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the close never ended")
	}
}
