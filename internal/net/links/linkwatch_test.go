package links

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/nettest"
)

// addLink makes a link called name for the tests to wait for: a bridge,
// as this kernel may have no dummy links. It is deleted when the test ends,
// if the test has not deleted it.
func addLink(t *testing.T, name string) error {
	t.Cleanup(func() {
		if ok, _ := Exists(name); ok {
			Delete(name)
		}
	})
	return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}})
}

func TestLinkWatcher(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	w := NewWatcher()

	// Missing links are gone at once.
	if err := w.WaitGone(ctx, prefix+"x", prefix+"y"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range []string{"b1", "b2", "b3"} {
		names = append(names, prefix+n)
		if err := addLink(t, prefix+n); err != nil {
			t.Fatal(err)
		}
	}
	// Still there: the wait ends with the context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := w.WaitGone(short, names...); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitGone on existing links = %v, want deadline exceeded", err)
	}

	// Many waiters, links deleted while they wait.
	errc := make(chan error, 6)
	for i := range 6 {
		go func() { errc <- w.WaitGone(ctx, names[i%3], names[(i+1)%3]) }()
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	for _, n := range names {
		if err := Delete(n); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	// Events, not the 500 ms safety poll, should end the waits.
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Errorf("waiters took %s after the deletions", took)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sock != nil || w.count != 0 || len(w.waiting) != 0 {
		t.Errorf("idle watcher still holds state: sock %v, count %d, waiting %v", w.sock, w.count, w.waiting)
	}
}

// Expect registers before the deletion, so a link deleted right after is
// reported by its event, not by the 25 ms first check or a later poll.
func TestLinkWatcherExpect(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	w := NewWatcher()
	name := prefix + "e"
	if err := addLink(t, name); err != nil {
		t.Fatal(err)
	}
	g := w.Expect(name)
	defer g.Close()
	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the deletion")
	}
	if err := g.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	g.Close()
	g.Close() // twice is fine
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sock != nil || w.count != 0 {
		t.Errorf("idle watcher still holds state: sock %v, count %d", w.sock, w.count)
	}
}
