// Package namespace makes, finds and removes named network namespaces (bind
// mounts under /run/netns, as iproute2 makes them) and runs code on a thread
// inside one.
package namespace

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces are bind-mounted, as iproute2 does.
const netnsDir = "/run/netns"

// threadNetns names the network namespace of the calling thread.
const threadNetns = "/proc/thread-self/ns/net"

// Path is the bind mount of the named namespace.
func Path(name string) string { return filepath.Join(netnsDir, name) }

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

// In runs fn on a thread inside the namespace mounted at path.
func In(path string, fn func() error) error {
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
