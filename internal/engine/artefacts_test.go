package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// The project's artefacts/ is a copy for the user to read: an edited copy,
// or one replaced by a FIFO, changes nothing that up does.
func TestProjectCopyIsNeverRead(t *testing.T) {
	e, w, d := setup(t)
	ctx := context.Background()
	copyPath := topology.StatePath(d.ProjectLocation)
	own, err := os.ReadFile(e.statePath(d.Name))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(copyPath)
	if err != nil || !bytes.Equal(own, copied) {
		t.Fatalf("the project's copy of the state differs from the server's (%v)", err)
	}
	var st topology.State
	if err := json.Unmarshal(copied, &st); err != nil {
		t.Fatal(err)
	}
	st.Switches[0].Bridge = "docker0"
	if err := topology.WriteState(copyPath, &st); err != nil {
		t.Fatal(err)
	}
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdUp}); err != nil {
		t.Fatalf("Check(up) after the copy was edited: %v", err)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatalf("up after the copy was edited: %v", err)
	}
	if b, _, _ := w.snapshot(); slices.Contains(b, "docker0") {
		t.Fatalf("up used the edited copy: bridges %v", b)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)

	os.Remove(copyPath)
	if err := syscall.Mkfifo(copyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up with a FIFO for the copy: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("up with a FIFO for the copy did not return")
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
}

// clear-artefacts removes the project's copy, the server's generated
// folder and the deployment's disks folder, and never what a symlink in
// the project leads to.
func TestClearArtefactsRemovesGeneratedAndDisks(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(topo), 0o644)
	os.WriteFile(filepath.Join(dir, "s.sh"), []byte("#!/bin/sh\n"), 0o755)
	w := newWorld()
	e := New(Options{Drivers: guest.NewRegistry(w), Network: w,
		GeneratedDir: filepath.Join(data, "generated"), DisksDir: filepath.Join(data, "disks")})
	d := api.Deployment{Name: "lab", ProjectLocation: dir}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	gen := filepath.Join(data, "generated", "lab")
	if _, err := os.Stat(filepath.Join(gen, topology.StateFile)); err != nil {
		t.Fatalf("no state in the server's folder: %v", err)
	}
	disks := filepath.Join(data, "disks", "lab")
	os.MkdirAll(disks, 0o711)
	os.WriteFile(filepath.Join(disks, "vm.qcow2"), nil, 0o600)
	if err := e.ClearArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{gen, disks, filepath.Join(dir, "artefacts")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	if err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdUp}); !errors.Is(err, ErrConflict) {
		t.Errorf("up after clear-artefacts: %v, want ErrConflict", err)
	}

	// A project whose artefacts/ is a symlink: only the link goes.
	elsewhere := t.TempDir()
	keep := filepath.Join(elsewhere, "keep")
	os.WriteFile(keep, []byte("x"), 0o644)
	if err := os.Symlink(elsewhere, filepath.Join(dir, "artefacts")); err != nil {
		t.Fatal(err)
	}
	if err := e.ClearArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("clear-artefacts removed a file through a symlink: %v", err)
	}
}
