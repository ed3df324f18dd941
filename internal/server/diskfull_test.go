package server

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/api"
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

// fullDiskServer starts a server whose records folder is a 1 MiB tmpfs and
// returns it with a client, the folder, and a function that fills it. The
// caller closes the server.
func fullDiskServer(t *testing.T, data string) (s *Server, c *client.Client, gate *gateExecutor, dir string) {
	t.Helper()
	dir = filepath.Join(data, "deployments")
	cfg := config.Server{DataDir: data, Listen: "127.0.0.1:0", DB: "file",
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10}
	gate = newGate()
	s, err := New(context.Background(), Options{Config: cfg, Executor: gate})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	c, _ = client.New(ts.URL)
	return s, c, gate, dir
}

// mountSmallTmpfs mounts a 1 MiB tmpfs on data/deployments.
func mountSmallTmpfs(t *testing.T, data string) string {
	testenv.RequireRoot(t, "mounts a tmpfs")
	dir := filepath.Join(data, "deployments")
	os.MkdirAll(dir, 0o755)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		testenv.Skipf(t, "cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// fill writes to dir until the file system is full, and returns a function
// that frees the space again.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	return func() { os.Remove(path) }
}

func emptyProject(t *testing.T) string {
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	return project
}

// waitState polls deployment name until it reads want.
func waitState(t *testing.T, c *client.Client, name string, want api.StateKind) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := c.Deployment(context.Background(), name)
		if err == nil && d.State.Is(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s: %+v, %v; want state %s", name, d, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var up = api.ActionRequest{Command: api.Command{Name: api.CmdUp}}

// TestFullDiskKeepsTheOutcome: an action that ends while the records folder
// is full leaves its outcome in memory. The deployment reads as that
// outcome, not running; a new action is refused with 503 saying the disk is
// full; cancel says nothing runs; delete works; once space is freed the
// outcome is written and actions run again.
func TestFullDiskKeepsTheOutcome(t *testing.T) {
	data := t.TempDir()
	dir := mountSmallTmpfs(t, data)
	s, c, gate, _ := fullDiskServer(t, data)
	t.Cleanup(func() { s.Close(context.Background()) })
	ctx := context.Background()
	for _, name := range []string{"full", "gone"} {
		if _, err := c.CreateDeployment(ctx, name, emptyProject(t)); err != nil {
			t.Fatal(err)
		}
	}
	id, err := c.Action(ctx, "full", up)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Action(ctx, "gone", up); err != nil {
		t.Fatal(err)
	}
	free := fill(t, dir)
	gate.open()

	waitState(t, c, "full", api.StateUp)
	e, err := c.LogEntry(ctx, id)
	if err != nil || !e.Finished() || *e.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("log entry of the action: %+v, %v; want it finished with code 0", e, err)
	}
	_, err = c.Action(ctx, "full", api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
	if client.StatusOf(err) != 503 || !strings.Contains(err.Error(), "disk is full") || !strings.Contains(err.Error(), id) {
		t.Fatalf("action while the outcome is unwritten: %v, want 503 saying the disk is full", err)
	}
	if _, err := c.Cancel(ctx, "full", ""); client.StatusOf(err) != 409 || !strings.Contains(err.Error(), "no action is running") {
		t.Fatalf("cancel: %v, want 409 no action is running", err)
	}
	waitState(t, c, "gone", api.StateUp)
	if err := c.DeleteDeployment(ctx, "gone", true); err != nil {
		t.Fatalf("delete with the outcome unwritten: %v", err)
	}
	if _, err := c.Deployment(ctx, "gone"); client.StatusOf(err) != 404 {
		t.Fatalf("deleted deployment: %v, want 404", err)
	}

	free()
	down, err := c.Action(ctx, "full", api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
	if err != nil {
		t.Fatalf("action once space is free: %v", err)
	}
	waitState(t, c, "full", api.StateDown)
	if e, err := c.LogEntry(ctx, down); err != nil || !e.Finished() || *e.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("down: %+v, %v", e, err)
	}
	// Nothing is pending any more: this is the stored entry.
	if e, err := c.LogEntry(ctx, id); err != nil || !e.Finished() || *e.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("stored entry of the first action: %+v, %v", e, err)
	}
	if _, err := c.Deployment(ctx, "gone"); client.StatusOf(err) != 404 {
		t.Fatalf("deleted deployment came back: %v", err)
	}
}

// TestFullDiskOutcomeWrittenAtShutdown: an outcome kept in memory is
// written at shutdown once there is room, so the next start reports the
// action as it ended, not interrupted.
func TestFullDiskOutcomeWrittenAtShutdown(t *testing.T) {
	data := t.TempDir()
	dir := mountSmallTmpfs(t, data)
	s, c, gate, _ := fullDiskServer(t, data)
	ctx := context.Background()
	if _, err := c.CreateDeployment(ctx, "full", emptyProject(t)); err != nil {
		t.Fatal(err)
	}
	id, err := c.Action(ctx, "full", up)
	if err != nil {
		t.Fatal(err)
	}
	free := fill(t, dir)
	gate.open()
	waitState(t, c, "full", api.StateUp)
	free()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	s2, c2, _, _ := fullDiskServer(t, data)
	t.Cleanup(func() { s2.Close(context.Background()) })
	waitState(t, c2, "full", api.StateUp)
	if e, err := c2.LogEntry(ctx, id); err != nil || *e.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("after a restart the action reads %+v, %v; want it succeeded", e, err)
	}
}
