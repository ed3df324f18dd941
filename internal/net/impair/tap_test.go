package impair

import (
	"context"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/nettest"
)

// TestRateOnATapWithARootQdisc: libvirt gives a VM's tap a root noqueue
// qdisc of its own; an impairment replaces it (an add was refused with
// "file exists") and clearing it leaves the kernel's default.
func TestRateOnATapWithARootQdisc(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	if !nettest.InNewNetns(t, prefix) {
		return
	}
	tap := &netlink.Tuntap{LinkAttrs: netlink.NewLinkAttrs(), Mode: netlink.TUNTAP_MODE_TAP}
	tap.Name = prefix + "tap"
	if err := netlink.LinkAdd(tap); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(tap); err != nil {
		t.Fatal(err)
	}
	// What libvirt does to its taps.
	if out, err := exec.Command("tc", "qdisc", "add", "dev", tap.Name, "root", "handle", "0:", "noqueue").CombinedOutput(); err != nil {
		t.Fatalf("tc: %v: %s", err, out)
	}
	rootKind := func() string {
		qs, err := netlink.QdiscList(tap)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Attrs().Parent == netlink.HANDLE_ROOT {
				return q.Type()
			}
		}
		return ""
	}
	if err := SetImpairment(context.Background(), tap.Name, Impairment{RateKbit: 64}); err != nil {
		t.Fatal(err)
	}
	if k := rootKind(); k != "tbf" {
		t.Fatalf("root qdisc %q after a rate limit, want tbf", k)
	}
	if err := SetImpairment(context.Background(), tap.Name, Impairment{}); err != nil {
		t.Fatal(err)
	}
	if k := rootKind(); k == "tbf" {
		t.Fatal("the rate limit stayed after clearing it")
	}
}
