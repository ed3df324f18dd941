package nettest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddNamespace creates the named network namespace name (mounted under
// RunDir, as "ip netns add" does) with its loopback up, and removes it at
// cleanup; the links inside go with it. Name it with the test's Prefix so a
// crashed test's leftovers are found.
func AddNamespace(t testing.TB, name string) {
	t.Helper()
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := NamespacePath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	f.Close()
	t.Cleanup(func() {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
	})
	if err := mountNewNetns(path); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	if err := InNamespace(name, setLoopbackUp); err != nil {
		t.Fatalf("namespace %s: loopback: %v", name, err)
	}
}

// mountNewNetns unshares a new network namespace on a locked thread and
// bind-mounts it at path; the thread is then dropped (never handed back).
func mountNewNetns(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Not unlocked: the thread ends up in another namespace, so the
		// runtime destroys it when the goroutine returns.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount: %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

func setLoopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// AddVethTo creates, in the calling thread's namespace, a veth whose end
// name stays here (up, on bridge master unless master is empty) and whose
// end peer is born in the named namespace other (down, for SetAddrUp).
// mtu 0 leaves the kernel's default.
func AddVethTo(other, name, peer, master string, mtu int) error {
	f, err := os.Open(NamespacePath(other))
	if err != nil {
		return err
	}
	defer f.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	if master != "" {
		br, err := netlink.LinkByName(master)
		if err != nil {
			return err
		}
		attrs.MasterIndex = br.Attrs().Index
	}
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: peer, PeerNamespace: netlink.NsFd(int(f.Fd())), PeerMTU: uint32(mtu)}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s/%s: %w", name, peer, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(link)
}

// SetAddrUp gives the link name of the calling thread's namespace the
// address cidr and sets it up.
func SetAddrUp(name, cidr string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", cidr, name, err)
	}
	return netlink.LinkSetUp(link)
}

// Underlay joins the named namespaces a and b with a veth pair called
// "ul" at both ends, with addresses cidrA and cidrB: two hosts on a wire.
func Underlay(t testing.TB, a, b, cidrA, cidrB string) {
	t.Helper()
	if err := InNamespace(a, func() error { return AddVethTo(b, "ul", "ul", "", 0) }); err != nil {
		t.Fatalf("underlay %s-%s: %v", a, b, err)
	}
	for _, end := range []struct{ ns, cidr string }{{a, cidrA}, {b, cidrB}} {
		if err := InNamespace(end.ns, func() error { return SetAddrUp("ul", end.cidr) }); err != nil {
			t.Fatalf("underlay in %s: %v", end.ns, err)
		}
	}
}

// UnderlaySwitch wires the named namespaces hosts to one Linux bridge in
// the namespace sw (made here): each host gets an "ul" link with the
// address of the same index in cidrs, as hosts on one switch.
func UnderlaySwitch(t testing.TB, sw string, hosts, cidrs []string) {
	t.Helper()
	AddNamespace(t, sw)
	err := InNamespace(sw, func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
		br.Name = "ul"
		br.Flags = net.FlagUp
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		for i, h := range hosts {
			if err := AddVethTo(h, fmt.Sprintf("p%d", i), "ul", "ul", 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("underlay switch %s: %v", sw, err)
	}
	for i, h := range hosts {
		if err := InNamespace(h, func() error { return SetAddrUp("ul", cidrs[i]) }); err != nil {
			t.Fatalf("underlay in %s: %v", h, err)
		}
	}
}
