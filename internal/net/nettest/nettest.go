// Package nettest helps tests that use the real kernel: unique name
// prefixes, cleanup of everything carrying a prefix, re-running a test in a
// fresh network namespace, and an ICMP echo check run from inside a named
// namespace (so tests need no ping binary).
package nettest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/testenv"
)

// RunDir is where named network namespaces are mounted (as by iproute2).
const RunDir = "/run/netns"

const (
	envChild  = "TESTBEDOS_NETTEST_CHILD"
	envPrefix = "TESTBEDOS_NETTEST_PREFIX"
)

// RequireRoot skips the test unless it runs as root on Linux (fails it
// when TESTBEDOS_REQUIRE_INTEGRATION=1, see testenv).
func RequireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "creates namespaces, bridges and veths in the real kernel")
}

// Prefix returns a fresh prefix for kernel object names ("tq" and 6 hex
// digits), or, inside a child started by InNewNetns, the parent's. It
// registers a cleanup that removes everything named with it.
func Prefix(t testing.TB) string {
	t.Helper()
	p := os.Getenv(envPrefix)
	if p == "" || os.Getenv(envChild) == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		p = "tq" + hex.EncodeToString(b)
	}
	t.Cleanup(func() { RemoveAll(p) })
	return p
}

// Leftovers lists the links of the current namespace and the named
// namespaces whose names start with prefix.
func Leftovers(prefix string) (links, namespaces []string, err error) {
	all, err := netlink.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, nil, err
	}
	for _, l := range all {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			links = append(links, l.Attrs().Name)
		}
	}
	entries, err := os.ReadDir(RunDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return links, nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			namespaces = append(namespaces, e.Name())
		}
	}
	return links, namespaces, nil
}

// RemoveAll unmounts and removes the named namespaces and deletes the links
// whose names start with prefix, ignoring errors: it is a last resort for
// cleanups after failures.
func RemoveAll(prefix string) {
	links, namespaces, _ := Leftovers(prefix)
	for _, n := range namespaces {
		p := filepath.Join(RunDir, n)
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
	}
	for _, n := range links {
		if l, err := netlink.LinkByName(n); err == nil {
			_ = netlink.LinkDel(l)
		}
	}
}

var topLevel = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// InNewNetns re-runs the calling top-level test in a child process that
// lives in a new network namespace (sharing the mount namespace, so
// /run/netns is common) and reports whether the caller is that child. The
// parent returns false after the child ended, failing t if the child
// failed; prefix is handed to the child's Prefix so the parent's cleanup
// also covers what the child mounted under /run/netns.
//
//	if !nettest.InNewNetns(t, prefix) { return }
//	// … runs in the fresh namespace …
func InNewNetns(t *testing.T, prefix string) bool {
	t.Helper()
	if os.Getenv(envChild) == t.Name() {
		return true
	}
	if !topLevel.MatchString(t.Name()) {
		t.Fatalf("InNewNetns works for top-level tests only, not %s", t.Name())
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.v", "-test.count=1"}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envChild+"="+t.Name(), envPrefix+"="+prefix)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	t.Logf("child in a new network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("child test failed: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		testenv.Skip(t, "the child in a new network namespace skipped")
	}
	return false
}

// NamespacePath is the path of the named namespace name.
func NamespacePath(name string) string { return filepath.Join(RunDir, name) }

// InNamespace runs fn on a thread inside the named namespace, then returns
// the thread to its own namespace. A thread that cannot go back is not
// handed back to the scheduler.
func InNamespace(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(own)
		fd, err := unix.Open(NamespacePath(name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(own, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, err) // stays locked: the runtime drops the thread
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
