package nettest

import (
	"fmt"
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
