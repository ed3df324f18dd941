package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesRoundTrip: files put writes into the project folder through the
// API, get reads it back, list shows it, rm removes it; a path out of the
// folder is refused.
func TestFilesRoundTrip(t *testing.T) {
	e := newCLIEnv(t)
	local := filepath.Join(t.TempDir(), "setup.sh")
	os.WriteFile(local, []byte("#!/bin/sh\necho hi\n"), 0o644)
	run := func(args ...string) (int, string, string) {
		_, wait := e.run(append([]string{"--project-name", "lab"}, args...)...)
		return wait()
	}
	if code, out, errOut := run("files", "put", "scripts/setup.sh", local); code != 0 || !strings.Contains(out, "executable") {
		t.Fatalf("files put: %d %q %q", code, out, errOut)
	}
	if data, err := os.ReadFile(filepath.Join(e.project, "scripts", "setup.sh")); err != nil || string(data) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("the project's file: %q %v", data, err)
	}
	if code, out, _ := run("files", "get", "scripts/setup.sh"); code != 0 || out != "#!/bin/sh\necho hi\n" {
		t.Errorf("files get: %d %q", code, out)
	}
	if code, out, _ := run("files", "list"); code != 0 || !strings.Contains(out, "scripts/setup.sh") || !strings.Contains(out, "kvm-compose.yaml") {
		t.Errorf("files list: %d %q", code, out)
	}
	if code, _, errOut := run("files", "get", "../x"); code == 0 || errOut == "" {
		t.Errorf("files get ../x: %d %q", code, errOut)
	}
	if code, _, _ := run("files", "rm", "scripts/setup.sh"); code != 0 {
		t.Errorf("files rm: %d", code)
	}
	if _, err := os.Stat(filepath.Join(e.project, "scripts", "setup.sh")); err == nil {
		t.Error("the file is still there after files rm")
	}
}
