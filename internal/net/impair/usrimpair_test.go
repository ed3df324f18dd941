package impair

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/nettest"
)

// userspaceLab is two namespaces a (10.77.0.1) and b (10.77.0.2) on a
// bridge of the current namespace; it returns the host-side end of b's link.
func userspaceLab(t *testing.T, prefix string) (a, link string) {
	t.Helper()
	a, b := prefix+"a", prefix+"b"
	nettest.AddNamespace(t, a)
	nettest.AddNamespace(t, b)
	br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
	br.Name = prefix + "br"
	br.Flags = net.FlagUp
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	for i, ns := range []string{a, b} {
		if err := nettest.AddVethTo(ns, ns+"0", "eth0", br.Name, 0); err != nil {
			t.Fatal(err)
		}
		cidr := []string{"10.77.0.1/24", "10.77.0.2/24"}[i]
		if err := nettest.InNamespace(ns, func() error { return nettest.SetAddrUp("eth0", cidr) }); err != nil {
			t.Fatal(err)
		}
	}
	return a, b + "0"
}

// pings sends n echo requests from ns to 10.77.0.2 and returns the
// replies' lowest round trip (a loaded machine only adds to some) and how
// many answered.
func pings(t *testing.T, ns string, n int, timeout time.Duration) (time.Duration, int) {
	t.Helper()
	p, err := nettest.NewPinger(ns, net.IPv4(10, 77, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	best := time.Duration(0)
	got := 0
	for range n {
		if d, err := p.Echo(timeout); err == nil {
			if got == 0 || d < best {
				best = d
			}
			got++
		}
	}
	return best, got
}

// TestUserspaceImpairment: with the fallback (forced, whatever the kernel
// has), a delay shows in the round trip, a loss drops about its share, and
// clearing it removes the table and brings the round trip back.
func TestUserspaceImpairment(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	if !nettest.InNewNetns(t, prefix) {
		return
	}
	a, link := userspaceLab(t, prefix)
	b := prefix + "b"
	h := NewShaper(nil)
	t.Cleanup(func() { _ = h.Close() })
	ctx := context.Background()
	if _, n := pings(t, a, 3, time.Second); n == 0 {
		t.Fatal("no ping before the impairment")
	}

	if err := h.queues.set(ctx, link, Impairment{DelayMS: 60, JitterMS: 1}); err != nil {
		t.Fatal(err)
	}
	num, ok := h.QueueNumber(link)
	if !ok || num < queueBase {
		t.Fatalf("queue of %s: %d %v", link, num, ok)
	}
	if !hasQueueTable(t, b, link) {
		t.Errorf("no table in %s", b)
	}
	if rtt, n := pings(t, a, 5, 2*time.Second); n != 5 || rtt < 55*time.Millisecond || rtt > 120*time.Millisecond {
		t.Errorf("with 60 ms: rtt %v, %d of 5 answered", rtt, n)
	}

	// Changed in place: the same queue.
	if err := h.queues.set(ctx, link, Impairment{LossPct: 50}); err != nil {
		t.Fatal(err)
	}
	if n2, _ := h.QueueNumber(link); n2 != num {
		t.Errorf("queue changed from %d to %d", num, n2)
	}
	if _, n := pings(t, a, 100, 200*time.Millisecond); n < 30 || n > 70 {
		t.Errorf("with 50%% loss %d of 100 answered", n)
	} else {
		t.Logf("with 50%% loss %d of 100 answered", n)
	}

	if err := h.Impair(ctx, link, Impairment{}, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.QueueNumber(link); ok {
		t.Error("queue still listed after clearing")
	}
	if hasQueueTable(t, b, link) {
		t.Error("table still there after clearing")
	}
	if rtt, n := pings(t, a, 5, time.Second); n != 5 || rtt > 20*time.Millisecond {
		t.Errorf("after clearing: rtt %v, %d of 5", rtt, n)
	}

	// The link going away takes the table and queue with it.
	if err := h.queues.set(ctx, link, Impairment{DelayMS: 10}); err != nil {
		t.Fatal(err)
	}
	l, _ := netlink.LinkByName(link)
	if err := netlink.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := h.QueueNumber(link); !ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := h.QueueNumber(link); ok {
		t.Error("queue still listed after the link went away")
	}
}

// hasQueueTable reports whether namespace ns holds the IPv4 table of link.
func hasQueueTable(t *testing.T, ns, link string) bool {
	t.Helper()
	f, err := os.Open(nettest.NamespacePath(ns))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == userTablePrefix+link {
			return true
		}
	}
	return false
}

// TestUserspaceImpairmentNeedsAPeerNamespace: a link with no namespace at
// its other end (a VM's tap; here a bridge) has no fallback, and says so.
func TestUserspaceImpairmentNeedsAPeerNamespace(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	if !nettest.InNewNetns(t, prefix) {
		return
	}
	d := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
	d.Name = prefix + "tap"
	if err := netlink.LinkAdd(d); err != nil {
		t.Fatal(err)
	}
	h := NewShaper(nil)
	err := h.queues.set(context.Background(), d.Name, Impairment{DelayMS: 10})
	if !errors.Is(err, ErrNoPeerNamespace) {
		t.Fatalf("fallback on a bridge: %v, want ErrNoPeerNamespace", err)
	}
	if _, ok := h.QueueNumber(d.Name); ok {
		t.Error("a queue is listed for the bridge")
	}
}
