package namespace

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Named network namespaces: bind mounts of nsfs files under netnsDir, as
// iproute2 makes them, so "ip netns exec NAME" works on guests and routers.

// PrepareDir makes netnsDir a shared mount point, as iproute2 does, so that
// namespaces mounted later also appear in mount namespaces that already
// exist (such as those of running "ip netns exec" commands).
func PrepareDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: make it one by binding it onto itself.
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

// Create makes a new network namespace, bind-mounts it at path and sets
// its loopback up. It returns an open descriptor of the namespace and a
// netlink handle whose sockets live inside it; the caller closes both.
func Create(path string) (nsfd int, h *netlink.Handle, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return -1, nil, fmt.Errorf("create mount point: %w", err)
	}
	f.Close()
	nsfd = -1
	mounted := false
	err = OnThread(
		func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("new network namespace: %w", err)
			}
			return nil
		},
		func() error {
			if err := unix.Mount(threadNetns, path, "none", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind-mount namespace at %s: %w", path, err)
			}
			mounted = true
			fd, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open namespace: %w", err)
			}
			nsfd = fd
			// Sockets belong to the namespace of the thread creating
			// them, so this handle talks to the new namespace from any
			// thread later on.
			h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				return fmt.Errorf("netlink handle in namespace: %w", err)
			}
			// lo is always index 1 in a new namespace.
			lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
			if err := h.LinkSetUp(lo); err != nil {
				return fmt.Errorf("set lo up: %w", err)
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

// Mounted reports whether a namespace is mounted at path.
func Mounted(path string) (bool, error) {
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

// Remove unmounts the namespace at path and removes the mount point.
// The kernel frees the namespace, and with it the guest ends of the veths,
// once nothing else holds it.
func Remove(path string) error {
	// Mounted twice (an interrupted earlier run) needs two unmounts.
	for range 4 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
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
