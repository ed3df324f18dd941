package guest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/topology"
)

// A project file is read once, beneath the project folder, only when it is
// a regular file within its limit: a FIFO is refused at once, not waited
// on, and a symlink out of the project is refused.
func TestReadFileRefusesWhatIsNotAPlainProjectFile(t *testing.T) {
	project, _ := filepath.EvalSymlinks(t.TempDir())
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(project, "ok.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("ok.sh", filepath.Join(project, "inside.sh"))
	os.Symlink(outside, filepath.Join(project, "out.sh"))
	if err := syscall.Mkfifo(filepath.Join(project, "fifo.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := ProjectFiles{Project: project}
	ctx := context.Background()
	for _, ref := range []string{"ok.sh", filepath.Join(project, "inside.sh")} {
		if data, info, err := ReadFile(ctx, files, ref, 1<<10); err != nil || string(data) != "#!/bin/sh\n" || info.Mode().Perm() != 0o755 {
			t.Errorf("ReadFile(%s) = %q, %v", ref, data, err)
		}
	}
	for ref, want := range map[string]error{
		"out.sh":  ErrOutsideProject,
		"fifo.sh": topology.ErrNotRegular,
		"ok.sh":   topology.ErrTooLarge,
		".":       topology.ErrNotRegular,
	} {
		done := make(chan error, 1)
		go func() { _, _, err := ReadFile(ctx, files, ref, 4); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, want) {
				t.Errorf("ReadFile(%s) = %v, want %v", ref, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadFile(%s) did not return", ref)
		}
	}
	// A volume may be a folder, never a device or a way out.
	if f, err := files.OpenMount(ctx, "."); err != nil {
		t.Errorf("OpenMount of the project folder: %v", err)
	} else {
		f.Close()
	}
	if _, err := files.OpenMount(ctx, "out.sh"); !errors.Is(err, ErrOutsideProject) {
		t.Errorf("OpenMount through a symlink out: %v", err)
	}
	if _, err := files.OpenMount(ctx, "fifo.sh"); err == nil {
		t.Error("OpenMount of a FIFO succeeded")
	}
}
