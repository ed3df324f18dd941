// Package packaging tests the operator's install: setup.sh and teardown.sh
// at the repository root, and the systemd unit in deploy/.
package packaging

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/testenv"
)

// repoRoot is two folders up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tree lists every path under root (relative, folders with a trailing /).
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func groupExists(name string) bool {
	return exec.Command("getent", "group", name).Run() == nil
}

// TestSetupThenTeardown installs into a prefix of its own, checks that
// setup.sh made exactly its files and a unit systemd-analyze accepts, and
// that teardown.sh removes exactly them, the data only with --purge.
func TestSetupThenTeardown(t *testing.T) {
	testenv.RequireRoot(t, "setup.sh installs as root and creates a group")
	for _, tool := range []string{"go", "getent", "groupadd", "groupdel", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "needs %s (Debian's systemd and passwd packages; scripts/install-test-deps.sh)", tool)
		}
	}
	repo := repoRoot(t)
	root := t.TempDir()
	// Something of someone else's in the same bin folder stays untouched.
	other := filepath.Join(root, "usr/local/bin/other-tool")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)
	hadGroup := groupExists("testbedos")
	env := append(os.Environ(),
		"PREFIX="+filepath.Join(root, "usr/local"),
		"TESTBEDOS_DATA_DIR="+filepath.Join(root, "var/lib/testbedos"),
		"UNIT_DIR="+filepath.Join(root, "etc/systemd/system"),
		"RUN_DIR="+filepath.Join(root, "run/testbedos"),
	)
	run := func(script string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(repo, script), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", script, args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		// Whatever happened, take the group away again if it was ours.
		cmd := exec.Command(filepath.Join(repo, "teardown.sh"), "--purge")
		cmd.Env = env
		_ = cmd.Run()
	})

	run("setup.sh")
	data := []string{
		"var/", "var/lib/", "var/lib/testbedos/", "var/lib/testbedos/.setup-manifest",
		"var/lib/testbedos/config/", "var/lib/testbedos/deployments/", "var/lib/testbedos/logs/",
		"var/lib/testbedos/logs/orchestration/",
	}
	want := append(slices.Clone(before),
		"usr/local/bin/testbedos-server", "usr/local/bin/kvm-compose",
		"etc/", "etc/systemd/", "etc/systemd/system/", "etc/systemd/system/testbedos-server.service",
		"run/", "run/testbedos/")
	want = append(want, data...)
	sort.Strings(want)
	if got := tree(t, root); !slices.Equal(got, want) {
		t.Errorf("after setup.sh the prefix holds\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !groupExists("testbedos") {
		t.Error("setup.sh did not create the group testbedos")
	}

	// The installed unit points at the installed binary and data folder,
	// and systemd accepts it (no systemd needs to run for that).
	unit := filepath.Join(root, "etc/systemd/system/testbedos-server.service")
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"ExecStart=" + filepath.Join(root, "usr/local/bin/testbedos-server"),
		"Environment=TESTBEDOS_DATA_DIR=" + filepath.Join(root, "var/lib/testbedos"),
	} {
		if !strings.Contains(string(text), line+"\n") {
			t.Errorf("installed unit lacks %q:\n%s", line, text)
		}
	}
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
	if out, err := exec.Command(filepath.Join(root, "usr/local/bin/kvm-compose"), "--help").CombinedOutput(); err != nil {
		t.Errorf("installed kvm-compose --help: %v\n%s", err, out)
	}

	// Some data, as a server would write it.
	record := filepath.Join(root, "var/lib/testbedos/deployments/lab.json")
	if err := os.WriteFile(record, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("teardown.sh")
	want = append(slices.Clone(before), data...)
	want = append(want, "var/lib/testbedos/deployments/lab.json")
	sort.Strings(want)
	if got := tree(t, root); !slices.Equal(got, want) {
		t.Errorf("after teardown.sh the prefix holds\n  %s\nwant (the data kept)\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !hadGroup && !groupExists("testbedos") {
		t.Error("teardown.sh without --purge removed the group")
	}

	run("teardown.sh", "--purge")
	if got := tree(t, root); !slices.Equal(got, before) {
		t.Errorf("after teardown.sh --purge the prefix holds\n  %s\nwant what was there before\n  %s", strings.Join(got, "\n  "), strings.Join(before, "\n  "))
	}
	if groupExists("testbedos") != hadGroup {
		t.Errorf("group testbedos exists: %v, before setup.sh: %v", groupExists("testbedos"), hadGroup)
	}
}

// TestUnitVerifies runs systemd-analyze verify on deploy's unit as it is,
// with its ExecStart pointed at a binary that exists.
func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testenv.Skip(t, "needs systemd-analyze (Debian's systemd package; scripts/install-test-deps.sh)")
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/testbedos-server.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "ExecStart=/usr/local/bin/testbedos-server\n") {
		t.Fatalf("the unit's ExecStart is not /usr/local/bin/testbedos-server (setup.sh rewrites that path):\n%s", src)
	}
	if strings.Contains(string(src), "\n[Install]") && strings.Contains(string(src), "WantedBy=") {
		// Not enabled by default: setup.sh never runs systemctl enable.
		if s, _ := os.ReadFile(filepath.Join(repoRoot(t), "setup.sh")); strings.Contains(string(s), "systemctl enable") {
			t.Error("setup.sh enables the unit; it must stay disabled until the admin enables it")
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "testbedos-server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "testbedos-server.service")
	rendered := strings.ReplaceAll(string(src), "/usr/local/bin/testbedos-server", bin)
	if err := os.WriteFile(unit, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
