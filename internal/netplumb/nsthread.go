package netplumb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces are bind-mounted, as iproute2 does.
const netnsDir = "/run/netns"

// threadNetns names the network namespace of the calling thread.
const threadNetns = "/proc/thread-self/ns/net"

// NetnsPath is the bind mount of the named namespace.
func NetnsPath(name string) string { return filepath.Join(netnsDir, name) }

// OnThread runs enter and then fn on a goroutine locked to its OS thread and
// puts the thread back into its own network namespace afterwards. enter
// moves the thread into another namespace (setns, or unshare for a new
// one), all or nothing. A thread that cannot go back is discarded by ending
// the goroutine still locked. Sockets made in fn belong to the namespace fn
// ran in, wherever they are used later.
func OnThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer unix.Close(own)
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(own, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return thread to its network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// InNetns runs fn on a thread inside the namespace mounted at path.
func InNetns(path string, fn func() error) error {
	return OnThread(func() error {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace %s: %w", path, err)
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter namespace %s: %w", path, err)
		}
		return nil
	}, fn)
}

// netnsMounted reports whether a namespace is mounted at path.
func netnsMounted(path string) (bool, error) {
	var st unix.Statfs_t
	err := unix.Statfs(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// ensureNetnsDir makes netnsDir a shared mount point, as iproute2 does, so
// namespaces mounted later show in every mount namespace.
func ensureNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s onto itself: %w", netnsDir, err)
		}
		err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", netnsDir, err)
	}
	return nil
}

// createNetns makes a named namespace with lo up and returns a descriptor
// of it and a netlink handle inside it; the caller closes both.
func createNetns(name string) (nsfd int, h *netlink.Handle, err error) {
	if err := ensureNetnsDir(); err != nil {
		return -1, nil, err
	}
	path := NetnsPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return -1, nil, fmt.Errorf("create mount point %s: %w", path, err)
	}
	f.Close()
	nsfd, mounted := -1, false
	err = OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("new network namespace: %w", err)
		}
		return nil
	}, func() error {
		if err := unix.Mount(threadNetns, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount namespace at %s: %w", path, err)
		}
		mounted = true
		fd, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace: %w", err)
		}
		nsfd = fd
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("netlink handle in namespace: %w", err)
		}
		lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		// /proc/sys/net is the namespace of the thread that opens it.
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("enable IP forwarding: %w", err)
		}
		return nil
	})
	if err != nil {
		if h != nil {
			h.Close()
		}
		if nsfd >= 0 {
			unix.Close(nsfd)
		}
		if mounted {
			_ = unix.Unmount(path, unix.MNT_DETACH)
		}
		_ = os.Remove(path)
		return -1, nil, err
	}
	return nsfd, h, nil
}

// removeNetns unmounts a named namespace and removes its mount point; a
// missing one is fine.
func removeNetns(name string) error {
	path := NetnsPath(name)
	for range 4 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
