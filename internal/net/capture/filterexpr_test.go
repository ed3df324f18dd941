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

// The kernel's checker takes a filter with or, not and parentheses (its
// jumps all in range) on a real socket.
func TestKernelTakesCombinedFilters(t *testing.T) {
	nettest.RequireRoot(t)
	p := nettest.Prefix(t)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p + "f0"}, PeerName: p + "f1"}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = links.Delete(p + "f0") })
	f, err := CompileFilter("not arp and (tcp port 80 or udp port 53 or icmp) or (host 10.0.0.1 and not src port 22)")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := Capture(ctx, p+"f0", f, io.Discard); err != nil && ctx.Err() == nil {
		t.Fatalf("the kernel refused the filter: %v", err)
	}
}
