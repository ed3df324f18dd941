package netns

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/guest"
)

// TestExecRunsInTheGuestCgroup: a busy loop and a memory hog started with
// exec (as kvm-compose exec does) run in the guest's cgroup, so the
// guest's stats show their CPU time and memory, and Destroy kills them.
// Before, exec'd processes ran in the daemon's cgroup and the guest showed
// 0 CPU and 0 B.
func TestExecRunsInTheGuestCgroup(t *testing.T) {
	c := newCgroupGuest(t)
	ctx := context.Background()
	var out bytes.Buffer
	// A shell that fills a variable with 64 MiB and then loops busily,
	// holding it, in the background (one process: the loop does not starve
	// the filling on a loaded machine); exec returns once the outer shell
	// has printed its pid.
	script := `(x=$(head -c 67108864 /dev/zero | tr '\0' a); while :; do :; done) >/dev/null 2>&1 & echo $!`
	code, err := c.d.Exec(ctx, c.dep, c.g, guest.Command{Argv: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
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
	c.checkInCgroup(t, "exec'd process", pids...)
	s := c.waitStats(t, func(s guest.Stats) bool { return s.CPUSeconds >= 0.2 && s.MemoryBytes >= 64<<20 })
	t.Logf("stats of a busy shell holding 64 MiB, started by exec: %+v", s)
	if s.CPUSeconds < 0.2 || s.MemoryBytes < 64<<20 {
		t.Fatalf("Stats = %+v, want at least 0.2 CPU seconds and 64 MiB", s)
	}
	if err := c.d.Destroy(ctx, c.dep, c.g, c.log); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		waitProcessGone(t, pid)
	}
}
