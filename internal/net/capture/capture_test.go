package capture

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// TestCaptureEndsWhenTheLinkGoes: a capture on a link that is deleted (its
// guest destroyed, the deployment down) ends, rather than waiting for a
// link that will never come back; a link set down keeps it listening.
func TestCaptureEndsWhenTheLinkGoes(t *testing.T) {
	nettest.RequireRoot(t)
	p := nettest.Prefix(t)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p + "c0"}, PeerName: p + "c1"}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = links.Delete(p + "c0") })
	l, err := netlink.LinkByName(p + "c0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Capture(ctx, p+"c0", nil, io.Discard) }()
	time.Sleep(300 * time.Millisecond)
	if err := netlink.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the capture ended when its link went down: %v", err)
	case <-time.After(time.Second):
	}
	if err := netlink.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Logf("capture ended: %v", err)
	case <-time.After(3 * time.Second):
		t.Fatal("the capture still runs 3 s after its link was deleted")
	}
}
