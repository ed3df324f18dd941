package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/testenv"
)

// TestFailedWritesAre500AndKeepRecords puts the data folder on a small
// tmpfs, fills it, then makes it read-only: writes answer 500 with the
// cause, and the records written before are intact.
func TestFailedWritesAre500AndKeepRecords(t *testing.T) {
	testenv.RequireRoot(t, "mounts a tmpfs")
	// Only the records folder lives on the tmpfs: the server's lock file
	// and logs stay writable (an open file would also forbid the read-only
	// remount).
	data := t.TempDir()
	dir := filepath.Join(data, "deployments")
	os.MkdirAll(dir, 0o755)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		testenv.Skipf(t, "cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)

	cfg := config.Server{DataDir: data, Listen: "127.0.0.1:0", DB: "file",
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: s}
	e.ts = newTestHTTP(t, s)
	c, _ := client.New(e.ts.URL)
	ctx := context.Background()
	if _, err := c.CreateDeployment(ctx, "keep", project); err != nil {
		t.Fatal(err)
	}

	// Disk full.
	filler, _ := os.Create(filepath.Join(dir, "filler"))
	buf := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(buf); err != nil {
			break
		}
	}
	filler.Close()
	_, err = c.UpdateDeployment(ctx, "keep", "/")
	if client.StatusOf(err) != 400 { // "/" has no kvm-compose.yaml: refused before any write
		t.Fatalf("bad update: %v", err)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "kvm-compose.yaml"), nil, 0o644)
	_, err = c.UpdateDeployment(ctx, "keep", other)
	if client.StatusOf(err) != 500 || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("update on a full disk: %v, want 500 naming the cause", err)
	}
	if _, err := c.CreateDeployment(ctx, "new", other); client.StatusOf(err) != 500 {
		t.Fatalf("create on a full disk: %v, want 500", err)
	}
	d, err := c.Deployment(ctx, "keep")
	if err != nil || d.ProjectLocation != project {
		t.Fatalf("record after failed writes: %+v, %v", d, err)
	}

	// Read-only.
	os.Remove(filepath.Join(dir, "filler"))
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	_, err = c.UpdateDeployment(ctx, "keep", other)
	if client.StatusOf(err) != 500 || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("update on a read-only folder: %v, want 500 naming the cause", err)
	}
	if d, err := c.Deployment(ctx, "keep"); err != nil || d.ProjectLocation != project {
		t.Fatalf("record after read-only writes: %+v, %v", d, err)
	}
	unix.Mount("", dir, "", unix.MS_REMOUNT, "")
}
