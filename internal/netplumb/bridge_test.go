package netplumb

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/netplumb/nettest"
)

func TestBridgeLifecycle(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	name := prefix + "br"

	created, err := ensureBridge(ctx, name)
	if err != nil || !created {
		t.Fatalf("first ensureBridge = %v, %v; want created", created, err)
	}
	created, err = ensureBridge(ctx, name)
	if err != nil || created {
		t.Fatalf("second ensureBridge = %v, %v; want already there", created, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if link.Type() != "bridge" || link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("got %s with flags %v, want an up bridge", link.Type(), link.Attrs().Flags)
	}
	// A bridge someone set down comes up again.
	if err := netlink.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	if err := EnsureBridge(ctx, name); err != nil {
		t.Fatal(err)
	}
	if link, _ = netlink.LinkByName(name); link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge still down")
	}

	names, err := LinksWithPrefix(prefix)
	if err != nil || !slices.Equal(names, []string{name}) {
		t.Errorf("LinksWithPrefix = %v, %v; want [%s]", names, err, name)
	}

	if err := DeleteBridge(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := DeleteBridge(ctx, name); err != nil {
		t.Errorf("deleting a missing bridge: %v", err)
	}
	if names, _ := LinksWithPrefix(prefix); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

func TestBridgeRefusesOtherKinds(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: prefix + "a"}, PeerName: prefix + "b"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if err := EnsureBridge(ctx, prefix+"a"); !errors.Is(err, ErrNotBridge) {
		t.Errorf("EnsureBridge on a veth = %v, want ErrNotBridge", err)
	}
	if err := DeleteBridge(ctx, prefix+"a"); !errors.Is(err, ErrNotBridge) {
		t.Errorf("DeleteBridge on a veth = %v, want ErrNotBridge", err)
	}
	if ok, _ := LinkExists(prefix + "a"); !ok {
		t.Errorf("DeleteBridge removed a veth")
	}
	if err := EnsureBridge(ctx, "this-name-is-too-long"); err == nil {
		t.Errorf("EnsureBridge accepted a 21-byte name")
	}
}

func TestLinkWatcher(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	w := NewLinkWatcher()

	// Missing links are gone at once.
	if err := w.WaitGone(ctx, prefix+"x", prefix+"y"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range []string{"b1", "b2", "b3"} {
		names = append(names, prefix+n)
		if err := EnsureBridge(ctx, prefix+n); err != nil {
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
		if err := DeleteBridge(ctx, n); err != nil {
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

// Of many concurrent callers exactly one is told it made the bridge, so a
// failed up removes it once and only if it was not there before.
func TestHostEnsureBridgeConcurrent(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	h := NewHost(nil)
	name := prefix + "br"
	results := make(chan bool, 8)
	for range 8 {
		go func() {
			created, err := h.EnsureBridge(ctx, name)
			if err != nil {
				t.Error(err)
			}
			results <- created
		}()
	}
	made := 0
	for range 8 {
		if <-results {
			made++
		}
	}
	if made != 1 {
		t.Errorf("%d callers were told they created the bridge, want 1", made)
	}
	if err := h.DeleteBridge(ctx, name); err != nil {
		t.Fatal(err)
	}
}

// Expect registers before the deletion, so a link deleted right after is
// reported by its event, not by the 25 ms first check or a later poll.
func TestLinkWatcherExpect(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	w := NewLinkWatcher()
	name := prefix + "e"
	if err := EnsureBridge(ctx, name); err != nil {
		t.Fatal(err)
	}
	g := w.Expect(name)
	defer g.Close()
	if err := DeleteBridge(ctx, name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.Done():
	case <-time.After(2 * time.Second):
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
