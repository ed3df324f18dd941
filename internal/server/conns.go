package server

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/config"
)

// Timeouts of a connection. A request's headers must arrive within
// headerTimeout and its body within bodyTimeout (the body's clock starts
// with the request; credentials are checked before the body is read, so a
// request without them gets its 401 at once). An answer must be written
// within writeTimeout, except on stream routes (websockets, captures,
// exec), which clear both deadlines once let in. A keep-alive connection
// idle for idleTimeout is closed.
const (
	headerTimeout = 10 * time.Second
	bodyTimeout   = 30 * time.Second
	writeTimeout  = 2 * time.Minute
	idleTimeout   = 2 * time.Minute
	// socketMaxConns caps the unix socket's connections apart from TCP's,
	// so a flood over TCP never reaches the local door.
	socketMaxConns = 256
)

// limitListener caps the open connections of a listener. At the cap it
// makes room by closing the connection that has waited longest without a
// request in flight (idle keep-alive, or no request yet); when every one
// is busy it accepts no more until one closes: the process never runs out
// of file descriptors, and a new client (a health check) gets in.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once

	mu    sync.Mutex
	conns map[*limitConn]struct{}
}

func limitConns(l net.Listener, max int) *limitListener {
	if max <= 0 {
		max = config.DefaultMaxConns
	}
	return &limitListener{Listener: l, slots: make(chan struct{}, max), done: make(chan struct{}), conns: map[*limitConn]struct{}{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
		default:
			l.evict()
			select {
			case l.slots <- struct{}{}:
			case <-l.done:
				return nil, net.ErrClosed
			case <-time.After(100 * time.Millisecond):
				continue // a busy connection may have gone idle
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		lc := &limitConn{Conn: c, l: l, since: time.Now(), waiting: true}
		l.mu.Lock()
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		return lc, nil
	}
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// open is the number of connections open now.
func (l *limitListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// evict closes the connection waiting longest for a request.
func (l *limitListener) evict() {
	l.mu.Lock()
	var oldest *limitConn
	for c := range l.conns {
		if c.waiting && (oldest == nil || c.since.Before(oldest.since)) {
			oldest = c
		}
	}
	l.mu.Unlock()
	if oldest != nil {
		oldest.Close()
	}
}

// limitConn is one connection of a limitListener; it frees its slot once
// closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
	// waiting and since (under l.mu): no request in flight since when.
	waiting bool
	since   time.Time
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}

// trackState tells a connection's listener whether it has a request in
// flight (http.Server.ConnState).
func trackState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitConn)
	if !ok {
		return
	}
	lc.l.mu.Lock()
	defer lc.l.mu.Unlock()
	switch state {
	case http.StateIdle:
		lc.waiting, lc.since = true, time.Now()
	case http.StateActive, http.StateHijacked:
		lc.waiting = false
	}
}

// deadlines starts the clocks of a request: the body's (cleared once it is
// read whole, so the connection's wait for its next request is not cut)
// and the answer's.
func deadlines(w http.ResponseWriter, r *http.Request, body, write time.Duration) *http.Request {
	rc := http.NewResponseController(w)
	now := time.Now()
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		if rc.SetReadDeadline(now.Add(body)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
	}
	rc.SetWriteDeadline(now.Add(write))
	return r
}

// endDeadlines clears a request's deadlines: a stream route lasts as long
// as its client wants.
func endDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
}

// deadlineBody clears the read deadline once the body is read whole.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
