package netns

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/guest"
)

func TestCgroup2Mount(t *testing.T) {
	hybrid := `25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`
	pure := `30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
31 1 0:27 / /mnt/other rw - cgroup2 cgroup2 rw
`
	for _, tc := range []struct {
		name, in, want string
		err            error
	}{
		{"hybrid", hybrid, "/sys/fs/cgroup/unified", nil},
		{"pure v2", pure, "/sys/fs/cgroup", nil},
		{"none", "1 0 0:1 / / rw - ext4 /dev/sda rw\n", "", errNoCgroup2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroup2Mount(strings.NewReader(tc.in))
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("cgroup2Mount = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestCgroupFiles(t *testing.T) {
	stat := "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n"
	if n, err := statField(stat, "usage_usec"); err != nil || n != 1500000 {
		t.Errorf("usage_usec = %d, %v", n, err)
	}
	if _, err := statField(stat, "nr_periods"); err == nil {
		t.Error("a missing field is no error")
	}
	if n := residentPages("1000 250 100 1 0 50 0\n"); n != 250 {
		t.Errorf("residentPages = %d, want 250", n)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if cgroupName(bad) == nil {
			t.Errorf("cgroupName(%q) accepted", bad)
		}
	}
}

// TestGuestCgroup: a setup script's background process runs in the guest's
// cgroup, its CPU time shows in Stats, and Destroy kills it and removes the
// cgroup.
func TestGuestCgroup(t *testing.T) {
	c := newCgroupGuest(t)
	d, st, g, dir, log := c.d, c.st, c.g, c.dir, c.log
	ctx := context.Background()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("cgroup after Create: %v", err)
	}

	st.Project = t.TempDir()
	c.dep = guest.LocalDeployment(st)
	dep := c.dep
	pidFile := filepath.Join(st.Project, "burner.pid")
	script := filepath.Join(st.Project, "burn.sh")
	body := "#!/bin/sh\n(while :; do :; done) >/dev/null 2>&1 &\necho $! > " + pidFile + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.RunScript(ctx, dep, g, script, log); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	c.checkInCgroup(t, "burner", pid)
	s := c.waitStats(t, func(s guest.Stats) bool { return s.CPUSeconds > 0 && s.MemoryBytes > 0 })
	if s.CPUSeconds <= 0 || s.MemoryBytes == 0 {
		t.Errorf("Stats = %+v, want CPU and memory > 0", s)
	}
	t.Logf("stats of a busy loop: %+v", s)

	if err := d.Destroy(ctx, dep, g, log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cgroup %s after Destroy: %v", dir, err)
	}
	if alive(pid) {
		t.Errorf("burner %d still runs after Destroy", pid)
	}
	if _, err := d.Stats(ctx, dep, g); err == nil {
		t.Error("Stats of a destroyed guest: no error")
	}
}

// alive reports whether pid runs (a zombie, not reaped by an init that
// does not reap, has ended).
func alive(pid int) bool {
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}
