package links

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Watcher waits for links to disappear. Many concurrent waiters share one
// netlink subscription, which is opened when the first waiter arrives and
// closed when the last one leaves, so an idle watcher holds nothing.
//
// The subscription lives in the network namespace of the thread that opens
// it, which for ordinary goroutines is the namespace of the process.
type Watcher struct {
	mu      sync.Mutex
	sock    *nl.NetlinkSocket // nil while nobody waits
	waiting map[string][]*goneWaiter
	count   int // registered waiters
}

type goneWaiter struct {
	left int // names not yet gone
	done chan struct{}
}

// NewWatcher returns a watcher with no subscription open yet.
func NewWatcher() *Watcher {
	return &Watcher{waiting: make(map[string][]*goneWaiter)}
}

// Waiters also look for themselves now and then: often when no subscription
// could be opened; otherwise once after firstCheck, for links that were
// gone before the wait began (callers usually wait for links they are
// deleting, whose event comes sooner, so this costs no lookups), and then
// rarely, as a safety net.
const (
	pollInterval   = 20 * time.Millisecond
	firstCheck     = 25 * time.Millisecond
	safetyInterval = 500 * time.Millisecond
)

// WaitGone returns when none of the named links exists any more, or with
// ctx's error when ctx ends first.
func (w *Watcher) WaitGone(ctx context.Context, names ...string) error {
	g := w.Expect(names...)
	defer g.Close()
	return g.Wait(ctx)
}

// Gone is a registered wait for links to disappear (see Expect).
type Gone struct {
	w          *Watcher
	names      []string
	gw         *goneWaiter
	subscribed bool
	closeOnce  sync.Once
}

// Expect starts watching for the named links to disappear, before the
// caller deletes them, so that no event is missed and Wait needs no lookup.
// Close releases the watch.
func (w *Watcher) Expect(names ...string) *Gone {
	g := &Gone{w: w, names: names, gw: &goneWaiter{done: make(chan struct{})}}
	if len(names) == 0 {
		close(g.gw.done)
		return g
	}
	g.subscribed = w.register(g.gw, names)
	return g
}

// Done is closed once every name is gone (as far as events and lookups
// have told).
func (g *Gone) Done() <-chan struct{} { return g.gw.done }

// Close stops watching. It may be called more than once.
func (g *Gone) Close() {
	if len(g.names) == 0 {
		return
	}
	g.closeOnce.Do(func() { g.w.unregister(g.gw, g.names) })
}

// Wait returns when none of the names exists any more, or with ctx's
// error when ctx ends first.
func (g *Gone) Wait(ctx context.Context) error {
	if len(g.names) == 0 {
		return nil
	}
	next := firstCheck
	if !g.subscribed {
		next = 0
	}
	timer := time.NewTimer(next)
	defer timer.Stop()
	for {
		select {
		case <-g.gw.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for links %v to disappear: %w", g.w.remaining(g.names), ctx.Err())
		case <-timer.C:
			g.w.recheck(g.names)
			if g.subscribed {
				timer.Reset(safetyInterval)
			} else {
				timer.Reset(pollInterval)
			}
		}
	}
}

// register records gw as waiting for names and makes sure a subscription is
// open. It reports whether one is.
func (w *Watcher) register(gw *goneWaiter, names []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		gw.left++
		w.waiting[n] = append(w.waiting[n], gw)
	}
	w.count++
	if w.sock == nil {
		sock, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
		if err != nil {
			return false
		}
		// Tearing down hundreds of namespaces at once sends a burst of
		// events; a large buffer avoids losing them (and falling back to
		// polling).
		_ = sock.SetReceiveBufferSize(4<<20, true)
		w.sock = sock
		go w.listen(sock)
	}
	return true
}

func (w *Watcher) unregister(gw *goneWaiter, names []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range names {
		list := w.waiting[n]
		for i, g := range list {
			if g == gw {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(w.waiting, n)
		} else {
			w.waiting[n] = list
		}
	}
	w.count--
	if w.count == 0 && w.sock != nil {
		w.sock.Close() // ends listen
		w.sock = nil
	}
}

// listen reads link events until sock is closed.
func (w *Watcher) listen(sock *nl.NetlinkSocket) {
	for {
		msgs, _, err := sock.Receive()
		if err != nil {
			if errors.Is(err, syscall.ENOBUFS) {
				// Events were lost: look at every name still awaited.
				w.recheck(w.awaited())
				continue
			}
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			// Closed by unregister, or broken: waiters still poll on
			// their own only if the socket is gone.
			w.mu.Lock()
			if w.sock == sock {
				w.sock = nil
				sock.Close()
			}
			w.mu.Unlock()
			return
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_DELLINK || len(m.Data) < unix.SizeofIfInfomsg {
				continue
			}
			info := nl.DeserializeIfInfomsg(m.Data)
			// AF_BRIDGE deletions only say a port left its bridge; the
			// link itself is gone when the AF_UNSPEC message comes.
			if info.Family != unix.AF_UNSPEC {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m.Data[info.Len():])
			if err != nil {
				continue
			}
			for _, a := range attrs {
				if a.Attr.Type == unix.IFLA_IFNAME {
					w.markGone(string(trimNUL(a.Value)))
				}
			}
		}
	}
}

func (w *Watcher) markGone(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list, ok := w.waiting[name]
	if !ok {
		return
	}
	delete(w.waiting, name)
	for _, gw := range list {
		gw.left--
		if gw.left == 0 {
			close(gw.done)
		}
	}
}

// recheck asks the kernel about each name and marks the missing ones gone.
func (w *Watcher) recheck(names []string) {
	for _, n := range names {
		if ok, err := Exists(n); err == nil && !ok {
			w.markGone(n)
		}
	}
}

func (w *Watcher) awaited() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.waiting))
	for n := range w.waiting {
		names = append(names, n)
	}
	return names
}

func (w *Watcher) remaining(names []string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var left []string
	for _, n := range names {
		if _, ok := w.waiting[n]; ok {
			left = append(left, n)
		}
	}
	return left
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
