package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// A netns guest's processes (its setup scripts, the commands of exec, the
// console's shell and everything they start) run in a cgroup of their own, testbedos/<deployment>/<guest> on the
// cgroup2 hierarchy: on a pure cgroup v2 machine that is /sys/fs/cgroup, on
// a hybrid one (v1 controllers beside it) /sys/fs/cgroup/unified. Processes
// are started straight into it (clone3 with CLONE_INTO_CGROUP), so a script
// cannot fork before it is there. CPU time comes from the cgroup's
// cpu.stat, which cgroup2 keeps for every cgroup even without the cpu
// controller; memory from memory.current where the memory controller is
// enabled for the tree, otherwise from the resident sizes of the cgroup's
// processes (/proc/<pid>/statm). Destroy kills what is left with
// cgroup.kill and removes the cgroup.

// cgroupTree is the guests' cgroups; found on first use.
type cgroupTree struct {
	once sync.Once
	root string // the cgroup2 mount, "" when there is none
	err  error
}

// cgroupPrefix is the tree's top, under the cgroup2 mount.
const cgroupPrefix = "testbedos"

// mountPoint finds the cgroup2 mount.
func (t *cgroupTree) mountPoint() (string, error) {
	t.once.Do(func() {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			t.err = err
			return
		}
		defer f.Close()
		t.root, t.err = cgroup2Mount(f)
	})
	return t.root, t.err
}

// errNoCgroup2: the machine has no cgroup2 hierarchy mounted.
var errNoCgroup2 = errors.New("no cgroup2 hierarchy is mounted")

// cgroup2Mount reads mountinfo and returns the cgroup2 mount point,
// /sys/fs/cgroup preferred.
func cgroup2Mount(r interface{ Read([]byte) (int, error) }) (string, error) {
	var found []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields := strings.Fields(pre)
		if len(fields) < 5 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		found = append(found, fields[4])
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	for _, m := range found {
		if m == "/sys/fs/cgroup" {
			return m, nil
		}
	}
	if len(found) == 0 {
		return "", errNoCgroup2
	}
	return found[0], nil
}

// cgroupName checks a path element of the tree.
func cgroupName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("invalid cgroup name %q", s)
	}
	return nil
}

// path is the cgroup of a guest.
func (t *cgroupTree) path(deployment, guestName string) (string, error) {
	root, err := t.mountPoint()
	if err != nil {
		return "", err
	}
	if err := errors.Join(cgroupName(deployment), cgroupName(guestName)); err != nil {
		return "", err
	}
	return filepath.Join(root, cgroupPrefix, deployment, guestName), nil
}

// ensure makes the guest's cgroup (and the memory controller available in
// it where the machine allows) and returns it.
func (t *cgroupTree) ensure(deployment, guestName string) (string, error) {
	dir, err := t.path(deployment, guestName)
	if err != nil {
		return "", err
	}
	root, _ := t.mountPoint()
	// Delegate the memory controller down the tree when the hierarchy has
	// it; a hybrid machine keeps it in v1 and the write fails: fine.
	parent := root
	for _, elem := range []string{cgroupPrefix, deployment} {
		enableController(parent, "memory")
		parent = filepath.Join(parent, elem)
		if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("cgroup %s: %w", parent, err)
		}
	}
	enableController(parent, "memory")
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return dir, nil
}

func enableController(dir, name string) {
	have, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil || !containsWord(string(have), name) {
		return
	}
	on, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if containsWord(string(on), name) {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+name), 0)
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// open returns a descriptor of the guest's cgroup for CLONE_INTO_CGROUP,
// making the cgroup if needed.
func (t *cgroupTree) open(deployment, guestName string) (int, error) {
	dir, err := t.ensure(deployment, guestName)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	return fd, nil
}

// remove kills every process left in the guest's cgroup and removes it,
// and the deployment's cgroup once it holds no guest. A cgroup that is not
// there is fine.
func (t *cgroupTree) remove(ctx context.Context, deployment, guestName string, log actlog.Log) error {
	dir, err := t.path(deployment, guestName)
	if errors.Is(err, errNoCgroup2) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		if n := len(strings.Fields(string(procs))); n > 0 {
			log.Printf("guest %s: killed %d processes still running in its cgroup", guestName, n)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kill the processes of cgroup %s: %w", dir, err)
	}
	// The kill is asynchronous: rmdir answers EBUSY until the last
	// process has exited.
	for wait := time.Millisecond; ; wait *= 2 {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			break
		}
		if !errors.Is(err, unix.EBUSY) || wait > 2*time.Second {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Another guest of the deployment still there keeps it: fine.
	_ = unix.Rmdir(filepath.Dir(dir))
	return nil
}

// stats reads the guest's CPU time and memory from its cgroup.
func (t *cgroupTree) stats(deployment, guestName string) (guest.Stats, error) {
	dir, err := t.path(deployment, guestName)
	if err != nil {
		return guest.Stats{}, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return guest.Stats{}, fmt.Errorf("guest cgroup: %w", err)
	}
	usec, err := statField(string(data), "usage_usec")
	if err != nil {
		return guest.Stats{}, fmt.Errorf("%s/cpu.stat: %w", dir, err)
	}
	st := guest.Stats{CPUSeconds: float64(usec) / 1e6}
	if cur, err := os.ReadFile(filepath.Join(dir, "memory.current")); err == nil {
		st.MemoryBytes, err = strconv.ParseUint(strings.TrimSpace(string(cur)), 10, 64)
		return st, err
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return guest.Stats{}, fmt.Errorf("guest cgroup: %w", err)
	}
	page := uint64(os.Getpagesize())
	for _, f := range strings.Fields(string(procs)) {
		statm, err := os.ReadFile("/proc/" + f + "/statm")
		if err != nil {
			continue // gone meanwhile
		}
		st.MemoryBytes += residentPages(string(statm)) * page
	}
	return st, nil
}

// statField reads one "key value" line of a cgroup stat file.
func statField(data, key string) (uint64, error) {
	for _, line := range strings.Split(data, "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s", key)
}

// residentPages is the second field of /proc/<pid>/statm.
func residentPages(statm string) uint64 {
	f := strings.Fields(statm)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(f[1], 10, 64)
	return n
}

// interactiveCgroup is guestCgroup for the processes of exec and the
// console, which belong to no action's log: on a machine without cgroup2
// they run in the server's cgroup, as the action that made the guest said.
func (d *Driver) interactiveCgroup(dep guest.Deployment, g *topology.Guest) (set func(*syscall.SysProcAttr), done func(), err error) {
	return d.guestCgroup(dep, g, discardLog{})
}

// discardLog is an actlog.Log that drops what it is given.
type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Writer(string) io.WriteCloser {
	return nopCloser{io.Discard}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
