package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageVerbs: import a file, list it (also as JSON and among the
// original's cloud images), remove it; errors say what went wrong.
func TestImageVerbs(t *testing.T) {
	e := newCLIEnv(t)
	file := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(file, []byte("an image"), 0o644)
	run := func(args ...string) (int, string, string) {
		_, wait := e.run(args...)
		return wait()
	}
	if code, out, errOut := run("image", "import", "ubuntu_22_04", file); code != 0 || !strings.Contains(out, "imported ubuntu_22_04") {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}
	if code, out, _ := run("image", "list"); code != 0 || !strings.Contains(out, "ubuntu_22_04") || !strings.Contains(out, "(imported)") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, _ := run("image", "list", "--json"); code != 0 || !strings.Contains(out, `"sha256": "`) {
		t.Fatalf("list --json: %d %s", code, out)
	}
	if code, out, _ := run("cloud-images", "list"); code != 0 || !strings.Contains(out, "ubuntu_22_04  yes") || !strings.Contains(out, "cirros_0_6_2  no") {
		t.Fatalf("cloud-images list: %d %s", code, out)
	}
	if code, _, errOut := run("image", "import", "x", file, "--sha256", strings.Repeat("0", 64)); code == 0 || !strings.Contains(errOut, "sha256") {
		t.Fatalf("import with a wrong digest: %d %s", code, errOut)
	}
	if code, out, errOut := run("image", "rm", "ubuntu_22_04"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("rm: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := run("image", "rm", "ubuntu_22_04"); code == 0 || !strings.Contains(errOut, "no such image") {
		t.Fatalf("rm again: %d %s", code, errOut)
	}
}
