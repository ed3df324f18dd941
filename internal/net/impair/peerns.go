package impair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vishvananda/netlink"
)

// ErrNoPeerNamespace: the link has no network namespace at its other end
// (a VM's tap), where the userspace impairment fallback works.
var ErrNoPeerNamespace = errors.New("the link's other end is in no network namespace the daemon can find (the userspace fallback for netem works on netns and docker guests, not on VMs' taps)")

// namespaceDirs hold the bind mounts of named network namespaces: the
// netns driver's (iproute2's) and dockerd's.
var namespaceDirs = []string{"/run/netns", "/var/run/docker/netns"}

// peerNS is the network namespace at the other end of a veth, open, with
// the path it was found at (watched: the namespace is gone when the path
// no longer names it) and the index of the peer link in it.
type peerNS struct {
	file  *os.File
	path  string
	ino   uint64
	index int
}

// findPeerNS finds the namespace of the other end of veth l among the
// named namespaces.
func findPeerNS(l netlink.Link) (peerNS, error) {
	if _, ok := l.(*netlink.Veth); !ok || l.Attrs().NetNsID < 0 {
		return peerNS{}, ErrNoPeerNamespace
	}
	want := l.Attrs().NetNsID
	var paths []string
	for _, dir := range namespaceDirs {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	// Last, the namespaces of processes (a container whose namespace has
	// no bind mount): the path goes with the process.
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	seen := map[uint64]bool{}
	for _, path := range append(paths, procs...) {
		var st syscall.Stat_t
		if syscall.Stat(path, &st) != nil || seen[st.Ino] {
			continue
		}
		seen[st.Ino] = true
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if id, err := netlink.GetNetNsIdByFd(int(f.Fd())); err == nil && id == want {
			if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
				f.Close()
				return peerNS{}, fmt.Errorf("namespace %s: %w", path, err)
			}
			return peerNS{file: f, path: path, ino: st.Ino, index: l.Attrs().ParentIndex}, nil
		}
		f.Close()
	}
	return peerNS{}, ErrNoPeerNamespace
}

// alive reports whether the path still names the namespace (a deleted
// namespace's bind mount is gone; our open file alone keeps it).
func (p peerNS) alive() bool {
	var st syscall.Stat_t
	return syscall.Stat(p.path, &st) == nil && st.Ino == p.ino
}
