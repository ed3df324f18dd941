package docker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/topology"
)

// A volume's folder, checked inside the project, swapped for a symlink out
// of it before docker mounts it: docker still gets the folder that was
// checked, never the one the symlink leads to.
func TestSwappedVolumeMountsWhatWasChecked(t *testing.T) {
	testenv.RequireRoot(t, "bind-mounts volume sources")
	project, _ := filepath.EvalSymlinks(t.TempDir())
	data := filepath.Join(project, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "inside"), []byte("project"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Driver{mountsDir: t.TempDir()}
	g := &topology.Guest{Name: "c", Kind: topology.KindDocker}
	s := &topology.DockerSpec{Container: "tbos.lab.c", Image: "img:1",
		Volumes: []topology.VolumeSpec{{Source: data, Target: "/data"}}}
	dep := guest.Deployment{Name: "lab", Files: guest.ProjectFiles{Project: project}}
	p := d.pinner(dep, g)
	t.Cleanup(func() { p.unpin() })
	_, host, err := containerConfig(context.Background(), dep, g, s, p.pin)
	if err != nil {
		t.Fatal(err)
	}
	// The swap, between the check and the mount.
	if err := os.Rename(data, data+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, data); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(host.Mounts[0].Source)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "inside" {
		t.Fatalf("docker would mount %s, holding %v: not the folder that was checked", host.Mounts[0].Source, entries)
	}
	if err := p.unpin(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p.guestDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unpin left %s (%v)", p.guestDir(), err)
	}
	if _, err := os.Stat(filepath.Join(data+".old", "inside")); err != nil {
		t.Fatalf("unpin touched the project: %v", err)
	}
}
