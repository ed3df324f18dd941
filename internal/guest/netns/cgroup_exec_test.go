package netns

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// TestExecRunsInTheGuestCgroup: a busy loop and a memory hog started with
// exec (as kvm-compose exec does) run in the guest's cgroup, so the
// guest's stats show their CPU time and memory, and Destroy kills them.
// Before, exec'd processes ran in the daemon's cgroup and the guest showed
// 0 CPU and 0 B.
func TestExecRunsInTheGuestCgroup(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 1}
	st := stateFor(p)
	d := New(Options{})
	if _, err := d.cgroups.mountPoint(); err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	log := &guesttest.Log{}
	upBridge(t, p)
	upGuests(t, d, st, log)
	ctx := context.Background()
	g := &st.Guests[0]
	dep := guest.LocalDeployment(st)
	dir, err := d.cgroups.path(dep.Name, g.Name)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// A shell that fills a variable with 64 MiB and then loops busily,
	// holding it, in the background (one process: the loop does not starve
	// the filling on a loaded machine); exec returns once the outer shell
	// has printed its pid.
	script := `(x=$(head -c 67108864 /dev/zero | tr '\0' a); while :; do :; done) >/dev/null 2>&1 & echo $!`
	code, err := d.Exec(ctx, dep, g, guest.Command{Argv: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
	if err != nil || code != 0 {
		t.Fatalf("exec: %d, %v: %s", code, err, out.String())
	}
	var pids []int
	for _, f := range strings.Fields(out.String()) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("exec printed %q", out.String())
		}
		pids = append(pids, pid)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	})
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !containsWord(string(procs), strconv.Itoa(pid)) {
			t.Errorf("exec'd process %d not in %s/cgroup.procs: %q", pid, dir, procs)
		}
	}
	var s guest.Stats
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s, err = d.Stats(ctx, dep, g); err != nil {
			t.Fatal(err)
		}
		if s.CPUSeconds >= 0.2 && s.MemoryBytes >= 64<<20 {
			break
		}
	}
	t.Logf("stats of a busy shell holding 64 MiB, started by exec: %+v", s)
	if s.CPUSeconds < 0.2 || s.MemoryBytes < 64<<20 {
		t.Fatalf("Stats = %+v, want at least 0.2 CPU seconds and 64 MiB", s)
	}
	if err := d.Destroy(ctx, dep, g, log); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		waitProcessGone(t, pid)
	}
}
