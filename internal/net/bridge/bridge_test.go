package bridge

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

func TestBridgeLifecycle(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	name := prefix + "br"

	created, err := Ensure(ctx, name)
	if err != nil || !created {
		t.Fatalf("first ensureBridge = %v, %v; want created", created, err)
	}
	created, err = Ensure(ctx, name)
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
	if _, err := Ensure(ctx, name); err != nil {
		t.Fatal(err)
	}
	if link, _ = netlink.LinkByName(name); link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge still down")
	}

	names, err := links.WithPrefix(prefix)
	if err != nil || !slices.Equal(names, []string{name}) {
		t.Errorf("WithPrefix = %v, %v; want [%s]", names, err, name)
	}

	if err := Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx, name); err != nil {
		t.Errorf("deleting a missing bridge: %v", err)
	}
	if names, _ := links.WithPrefix(prefix); len(names) != 0 {
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
	if _, err := Ensure(ctx, prefix+"a"); !errors.Is(err, ErrNotBridge) {
		t.Errorf("Ensure on a veth = %v, want ErrNotBridge", err)
	}
	if err := Delete(ctx, prefix+"a"); !errors.Is(err, ErrNotBridge) {
		t.Errorf("Delete on a veth = %v, want ErrNotBridge", err)
	}
	if ok, _ := links.Exists(prefix + "a"); !ok {
		t.Errorf("Delete removed a veth")
	}
	if _, err := Ensure(ctx, "this-name-is-too-long"); err == nil {
		t.Errorf("Ensure accepted a 21-byte name")
	}
}

// Of many concurrent callers exactly one is told it made the bridge, so a
// failed up removes it once and only if it was not there before.
func TestEnsureConcurrent(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	ctx := context.Background()
	name := prefix + "br"
	results := make(chan bool, 8)
	for range 8 {
		go func() {
			created, err := Ensure(ctx, name)
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
	if err := Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
}
