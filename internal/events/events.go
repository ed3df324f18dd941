// Package events is the in-process hub behind /api/events: the runner (and
// later the cluster) publishes, websocket followers subscribe. Publishing
// never blocks: every subscriber has a bounded buffer, and one that lets it
// fill up is dropped, so a slow reader loses its stream, never slows the
// publisher.
package events

import (
	"errors"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

// Why a subscription ended.
var (
	// ErrClosed: the hub closed (the server is shutting down).
	ErrClosed = errors.New("the event hub closed")
	// ErrTooSlow: the subscriber did not keep up and was dropped.
	ErrTooSlow = errors.New("the subscriber fell behind and was dropped")
)

// DefaultBuffer is how many events a subscriber may have unread.
const DefaultBuffer = 256

// Hub fans events out to subscribers.
type Hub struct {
	buffer int
	now    func() time.Time

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// New returns a hub whose subscribers each hold up to buffer unread events
// (DefaultBuffer when buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{buffer: buffer, now: time.Now, subs: make(map[*Subscription]struct{})}
}

// Subscription is one subscriber's stream of events. C is closed when the
// subscription ends; Err then says why.
type Subscription struct {
	C <-chan api.Event

	c   chan api.Event
	hub *Hub
	err error // set under hub.mu before c is closed
}

// Subscribe starts a subscription; it gets every event published from now
// on until it is closed, dropped or the hub closes. On a closed hub it
// returns a subscription that has already ended.
func (h *Hub) Subscribe() *Subscription {
	c := make(chan api.Event, h.buffer)
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.end(ErrClosed)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// end closes the subscription; the caller holds hub.mu.
func (s *Subscription) end(err error) {
	s.err = err
	close(s.c)
	delete(s.hub.subs, s)
}

// Close ends the subscription. Events still buffered stay readable.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if _, ok := s.hub.subs[s]; ok {
		s.end(nil)
	}
}

// Err says why C was closed: nil after Close, ErrClosed or ErrTooSlow.
// It is meaningful only once C is closed.
func (s *Subscription) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Publish sends e to every subscriber without waiting; e.Time is set when
// zero. A subscriber whose buffer is full is dropped with ErrTooSlow.
func (h *Hub) Publish(e api.Event) {
	if e.Time.IsZero() {
		e.Time = h.now().UTC()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.end(ErrTooSlow)
		}
	}
}

// Subscribers reports how many subscriptions are live.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close ends every subscription with ErrClosed (after the events they still
// hold) and refuses new ones. Publishing after Close does nothing.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.end(ErrClosed)
	}
}
