package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/store/storetest"
	"github.com/testbedos/testbedos/internal/testenv"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "testbedos.db"))
	})
}

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenSettings(t *testing.T) {
	// A '?' and a '#' in the folder must stay part of the path.
	dir := filepath.Join(t.TempDir(), "odd?dir#x")
	s := open(t, filepath.Join(dir, "testbedos.db"))
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "testbedos.db")); err != nil {
		t.Fatalf("database not where asked: %v", err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.write, "journal_mode", "wal"},
		{s.write, "synchronous", "2"},
		{s.write, "foreign_keys", "1"},
		{s.write, "busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10)},
		{s.read, "foreign_keys", "1"},
		{s.read, "query_only", "1"},
		{s.read, "busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10)},
	} {
		var got string
		if err := tc.db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil || got != tc.want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", tc.pragma, got, err, tc.want)
		}
	}
	var version int
	if err := s.read.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("schema version %d, %v; want %d", version, err, len(migrations))
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testbedos.db")
	ctx := context.Background()
	s := open(t, path)
	uuid := "u1"
	code, dur := 0, int64(42)
	end := api.StateIsUp
	want := api.LogEntry{Deployment: "keep", LogPath: "/l", ErrorCode: &code, EndState: &end, DurationMS: &dur,
		ExecutionTime: time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		Command:       api.Command{Name: api.CmdUp, Up: api.UpOptions{RerunScripts: true}}}
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "keep", ProjectLocation: "/p"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLogEntry(ctx, uuid, want); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDeployment(ctx, "keep", func(d *api.Deployment) error {
		d.State, d.LastActionUUID = api.FailedState(api.Command{Name: api.CmdUp, Up: api.UpOptions{Provision: true}}), &uuid
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path) // second open: no migration to apply, nothing lost
	defer s.Close()
	d, err := s.Deployment(ctx, "keep")
	if err != nil || d.ProjectLocation != "/p" || d.State.Failed == nil || !d.State.Failed.Up.Provision || *d.LastActionUUID != uuid {
		t.Fatalf("after reopen Deployment = %+v, %v", d, err)
	}
	e, err := s.LogEntry(ctx, uuid)
	if err != nil || jsonOf(t, e) != jsonOf(t, want) {
		t.Fatalf("after reopen LogEntry = %s, %v; want %s", jsonOf(t, e), err, jsonOf(t, want))
	}
	var versions int
	s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&versions)
	if versions != len(migrations) {
		t.Fatalf("schema_version has %d rows after reopen, want %d", versions, len(migrations))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testbedos.db")
	s := open(t, path)
	if _, err := s.write.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (?, 'later')`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testbedos.db")
	s := open(t, path)
	defer s.Close()
	// A second Store on the same file stands for another process: its
	// writes meet ours at SQLite's file lock, not at our Go queue.
	other := open(t, path)
	defer other.Close()
	ctx := context.Background()
	const deployments, perDeployment = 8, 25
	for i := range deployments {
		if err := s.CreateDeployment(ctx, api.Deployment{Name: fmt.Sprintf("d%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range deployments {
		for j := range perDeployment {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := s
				if j%2 == 1 {
					st = other
				}
				name := fmt.Sprintf("d%d", i)
				uuid := fmt.Sprintf("%s-u%d", name, j)
				if err := st.PutLogEntry(ctx, uuid, api.LogEntry{Deployment: name, LogPath: uuid}); err != nil {
					t.Error(err)
				}
				if _, err := st.UpdateDeployment(ctx, name, func(d *api.Deployment) error {
					d.ProjectLocation += "x"
					return nil
				}); err != nil {
					t.Error(err)
				}
				if _, err := st.Deployments(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for i := range deployments {
		name := fmt.Sprintf("d%d", i)
		d, err := s.Deployment(ctx, name)
		if err != nil || len(d.ProjectLocation) != perDeployment {
			t.Errorf("%s: %d of %d updates kept (%v)", name, len(d.ProjectLocation), perDeployment, err)
		}
		idx, err := other.LogIndex(ctx, name)
		if err != nil || len(idx) != perDeployment {
			t.Errorf("%s: %d of %d log entries kept (%v)", name, len(idx), perDeployment, err)
		}
	}
}

func TestDeleteDeploymentCheckSeesRecordInTransaction(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "testbedos.db"))
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "busy", State: api.StateIsRunning}); err != nil {
		t.Fatal(err)
	}
	// While check runs the write lock is held: a concurrent update waits and
	// lands after the delete, finding nothing.
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.DeleteDeployment(ctx, "busy", func(d api.Deployment) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	updated := make(chan error, 1)
	go func() {
		_, err := s.UpdateDeployment(ctx, "busy", func(d *api.Deployment) error { return nil })
		updated <- err
	}()
	select {
	case err := <-updated:
		t.Fatalf("update ran while delete's check held the record: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-updated; !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update after delete: %v, want ErrNotFound", err)
	}
}

func TestPanicInUpdateReleasesWriter(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "testbedos.db"))
	defer s.Close()
	ctx := context.Background()
	s.CreateDeployment(ctx, api.Deployment{Name: "p", ProjectLocation: "/before"})
	func() {
		defer func() { recover() }()
		s.UpdateDeployment(ctx, "p", func(d *api.Deployment) error {
			d.ProjectLocation = "/half"
			panic("boom")
		})
	}()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d, err := s.UpdateDeployment(ctx, "p", func(d *api.Deployment) error { return nil })
	if err != nil || d.ProjectLocation != "/before" {
		t.Fatalf("after a panicking update: %+v, %v", d, err)
	}
}

// TestReadOnlyWriteFails turns the write connection read-only: writes fail
// with SQLite's error and the record stays as it was.
func TestReadOnlyWriteFails(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "testbedos.db"))
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "keep", ProjectLocation: "/before"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.Exec(`PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateDeployment(ctx, "keep", func(d *api.Deployment) error {
		d.ProjectLocation = "/after"
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("update on a read-only database: %v, want an error naming it", err)
	}
	if err := s.PutLogEntry(ctx, "u", api.LogEntry{Deployment: "keep"}); err == nil {
		t.Fatal("put on a read-only database succeeded")
	}
	if err := s.DeleteDeployment(ctx, "keep", nil); err == nil {
		t.Fatal("delete on a read-only database succeeded")
	}
	if d, err := s.Deployment(ctx, "keep"); err != nil || d.ProjectLocation != "/before" {
		t.Fatalf("record after failed writes: %+v, %v", d, err)
	}
	s.write.Exec(`PRAGMA query_only = 0`)
	if _, err := s.UpdateDeployment(ctx, "keep", func(d *api.Deployment) error { return nil }); err != nil {
		t.Fatalf("writes do not recover: %v", err)
	}
}

// TestFullDiskWriteFails puts the database on a small tmpfs and fills it:
// a write that does not fit fails, the last acknowledged one is kept, and
// writes work again once there is room.
func TestFullDiskWriteFails(t *testing.T) {
	testenv.RequireRoot(t, "mounts a tmpfs")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		testenv.Skipf(t, "cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "testbedos.db")
	s := open(t, path)
	defer func() { s.Close() }()
	ctx := context.Background()
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "keep", ProjectLocation: "/0"}); err != nil {
		t.Fatal(err)
	}

	filler, _ := os.Create(filepath.Join(dir, "filler"))
	buf := make([]byte, 4<<10)
	for {
		if _, err := filler.Write(buf); err != nil {
			break
		}
	}
	filler.Close()
	// The WAL may have room left from earlier writes: write until it fails.
	acked, failed := "/0", error(nil)
	for i := 1; i < 10000 && failed == nil; i++ {
		loc := fmt.Sprintf("/%d/%s", i, strings.Repeat("x", 512))
		_, failed = s.UpdateDeployment(ctx, "keep", func(d *api.Deployment) error {
			d.ProjectLocation = loc
			return nil
		})
		if failed == nil {
			acked = loc
		}
	}
	if !errors.Is(failed, syscall.ENOSPC) || !strings.Contains(failed.Error(), "no space left") {
		t.Fatalf("writes on a full disk: %v, want ENOSPC", failed)
	}
	t.Logf("write on a full disk: %v", failed)
	if err := s.PutLogEntry(ctx, "u", api.LogEntry{Deployment: "keep", LogPath: strings.Repeat("y", 8192)}); err == nil {
		t.Fatal("put on a full disk succeeded")
	}
	if d, err := s.Deployment(ctx, "keep"); err != nil || d.ProjectLocation != acked {
		t.Fatalf("record after a failed write: %.40q, %v; want the last acknowledged %.40q", d.ProjectLocation, err, acked)
	}

	os.Remove(filepath.Join(dir, "filler"))
	if _, err := s.UpdateDeployment(ctx, "keep", func(d *api.Deployment) error { return nil }); err != nil {
		t.Fatalf("writes do not recover after space is freed: %v", err)
	}
	s.Close()
	s = open(t, path)
	if d, err := s.Deployment(ctx, "keep"); err != nil || d.ProjectLocation != acked {
		t.Fatalf("after reopen: %.40q, %v; want %.40q", d.ProjectLocation, err, acked)
	}
}

// TestReadOnlyFolder: on a folder remounted read-only the store does not
// open (SQLite needs to write the WAL), and says why.
func TestReadOnlyFolder(t *testing.T) {
	testenv.RequireRoot(t, "mounts a tmpfs")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		testenv.Skipf(t, "cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "testbedos.db")
	s := open(t, path)
	ctx := context.Background()
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "keep", ProjectLocation: "/before"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	t.Cleanup(func() { unix.Mount("", dir, "", unix.MS_REMOUNT, "") })
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("open on a read-only folder succeeded")
	} else {
		if !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("open on a read-only folder: %v, want an error naming the cause", err)
		}
	}
	unix.Mount("", dir, "", unix.MS_REMOUNT, "")
	s = open(t, path)
	defer s.Close()
	if d, err := s.Deployment(ctx, "keep"); err != nil || d.ProjectLocation != "/before" {
		t.Fatalf("record after the read-only spell: %+v, %v", d, err)
	}
}

// TestKill9KeepsAcknowledgedWrites runs a writer in a child process, kills
// it with SIGKILL mid-stream and checks that every write it acknowledged is
// in the database.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "testbedos.db")
	s := open(t, path)
	if err := s.CreateDeployment(context.Background(), api.Deployment{Name: "crash"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$")
	cmd.Env = append(os.Environ(), "TESTBEDOS_SQLITE_CHILD_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	acked := -1
	for lines.Scan() && acked < 150 {
		if n, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(n)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if acked < 0 {
		t.Fatal("the child acknowledged nothing")
	}

	s = open(t, path)
	defer s.Close()
	ctx := context.Background()
	idx, err := s.LogIndex(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= acked; i++ {
		if _, ok := idx[fmt.Sprintf("u%d", i)]; !ok {
			t.Fatalf("acknowledged entry u%d lost after kill -9 (acked up to %d)", i, acked)
		}
	}
	d, err := s.Deployment(ctx, "crash")
	if err != nil || len(d.ProjectLocation) < acked+1 {
		t.Fatalf("deployment after kill -9: %d updates, want at least %d (%v)", len(d.ProjectLocation), acked+1, err)
	}
}

// TestKillChild is the child of TestKill9KeepsAcknowledgedWrites: it writes
// until it is killed, printing each write once it is acknowledged.
func TestKillChild(t *testing.T) {
	path := os.Getenv("TESTBEDOS_SQLITE_CHILD_DB")
	if path == "" {
		t.Skip("runs as the child of TestKill9KeepsAcknowledgedWrites")
	}
	s := open(t, path)
	ctx := context.Background()
	for i := 0; ; i++ {
		if err := s.PutLogEntry(ctx, fmt.Sprintf("u%d", i), api.LogEntry{Deployment: "crash", LogPath: "/l"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateDeployment(ctx, "crash", func(d *api.Deployment) error {
			d.ProjectLocation += "x"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack %d\n", i)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
