// Package storetest is the contract suite every store provider must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// Run runs the contract suite; open returns a new, empty store for each
// sub-test.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateReadList", testCreateReadList},
		{"CreateTwiceConflicts", testCreateTwice},
		{"MissingIsNotFound", testMissing},
		{"InvalidNamesRejected", testInvalidNames},
		{"UpdateIsAtomic", testUpdateAtomic},
		{"UpdateErrorAborts", testUpdateErrorAborts},
		{"DeleteRemovesIndex", testDelete},
		{"LogEntries", testLogEntries},
		{"ConcurrentLogEntries", testConcurrentLogEntries},
		{"StateRoundTrip", testStateRoundTrip},
		{"DeployedRecord", testDeployedRecord},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

func mustCreate(t *testing.T, s store.Store, name string) api.Deployment {
	t.Helper()
	d := api.Deployment{Name: name, ProjectLocation: "/srv/" + name, State: api.StateIsDown}
	if err := s.CreateDeployment(context.Background(), d); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return d
}

func testCreateReadList(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, n := range []string{"beta", "alpha", "gamma_1"} {
		mustCreate(t, s, n)
	}
	got, err := s.Deployment(ctx, "alpha")
	if err != nil || got.Name != "alpha" || got.ProjectLocation != "/srv/alpha" || !got.State.Is(api.StateDown) {
		t.Fatalf("Deployment(alpha) = %+v, %v", got, err)
	}
	list, err := s.Deployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list {
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "alpha,beta,gamma_1" {
		t.Fatalf("Deployments() names = %v, want sorted alpha,beta,gamma_1", names)
	}
}

func testCreateTwice(t *testing.T, s store.Store) {
	mustCreate(t, s, "dup")
	err := s.CreateDeployment(context.Background(), api.Deployment{Name: "dup", ProjectLocation: "/other"})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: err = %v, want ErrExists", err)
	}
	d, _ := s.Deployment(context.Background(), "dup")
	if d.ProjectLocation != "/srv/dup" {
		t.Fatalf("second create changed the record: %+v", d)
	}
}

func testMissing(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Deployment(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Deployment: %v", err)
	}
	if _, err := s.UpdateDeployment(ctx, "nope", func(*api.Deployment) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateDeployment: %v", err)
	}
	if err := s.DeleteDeployment(ctx, "nope", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteDeployment: %v", err)
	}
	if _, err := s.LogIndex(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LogIndex: %v", err)
	}
	if _, err := s.LogEntry(ctx, "0000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LogEntry: %v", err)
	}
	if err := s.PutLogEntry(ctx, "u1", api.LogEntry{Deployment: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutLogEntry for a missing deployment: %v", err)
	}
}

func testInvalidNames(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, n := range []string{"", "../x", "a/b", "A", "-a", strings.Repeat("a", 64), "x-logs", "a b", "é"} {
		if err := s.CreateDeployment(ctx, api.Deployment{Name: n}); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("create %q: err = %v, want ErrInvalidName", n, err)
		}
		if _, err := s.Deployment(ctx, n); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("read %q: err = %v, want ErrInvalidName", n, err)
		}
	}
	list, err := s.Deployments(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("after invalid creates: %v, %v; want none", list, err)
	}
}

func testUpdateAtomic(t *testing.T, s store.Store) {
	mustCreate(t, s, "counter")
	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateDeployment(context.Background(), "counter", func(d *api.Deployment) error {
				d.ProjectLocation += "x"
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	d, _ := s.Deployment(context.Background(), "counter")
	if got := strings.Count(d.ProjectLocation, "x"); got != n {
		t.Fatalf("after %d concurrent updates the record has %d: lost updates", n, got)
	}
}

func testUpdateErrorAborts(t *testing.T, s store.Store) {
	mustCreate(t, s, "keep")
	boom := errors.New("boom")
	_, err := s.UpdateDeployment(context.Background(), "keep", func(d *api.Deployment) error {
		d.ProjectLocation = "/changed"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	d, _ := s.Deployment(context.Background(), "keep")
	if d.ProjectLocation != "/srv/keep" {
		t.Fatalf("aborted update was written: %+v", d)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "gone")
	if err := s.PutLogEntry(ctx, "u-gone", api.LogEntry{Deployment: "gone", LogPath: "/l"}); err != nil {
		t.Fatal(err)
	}
	busy := errors.New("busy")
	if err := s.DeleteDeployment(ctx, "gone", func(api.Deployment) error { return busy }); !errors.Is(err, busy) {
		t.Fatalf("delete with a failing check: %v", err)
	}
	if _, err := s.Deployment(ctx, "gone"); err != nil {
		t.Fatalf("a refused delete removed the record: %v", err)
	}
	if err := s.DeleteDeployment(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deployment(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.LogEntry(ctx, "u-gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("log entry after delete: %v", err)
	}
	mustCreate(t, s, "gone")
	idx, err := s.LogIndex(ctx, "gone")
	if err != nil || len(idx) != 0 {
		t.Fatalf("re-created deployment inherits old logs: %v %v", idx, err)
	}
}

func testLogEntries(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "logs")
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	running := api.LogEntry{Deployment: "logs", LogPath: "/x.log", ExecutionTime: start, Command: api.Command{Name: api.CmdUp}}
	if err := s.PutLogEntry(ctx, "u1", running); err != nil {
		t.Fatal(err)
	}
	got, err := s.LogEntry(ctx, "u1")
	if err != nil || got.Finished() || got.LogPath != "/x.log" || !got.ExecutionTime.Equal(start) {
		t.Fatalf("LogEntry(u1) = %+v, %v", got, err)
	}
	code, dur := 1, int64(1500)
	end := api.FailedState(api.Command{Name: api.CmdUp})
	done := running
	done.ErrorCode, done.EndState, done.DurationMS, done.Error = &code, &end, &dur, "boom"
	if err := s.PutLogEntry(ctx, "u1", done); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLogEntry(ctx, "u2", running); err != nil {
		t.Fatal(err)
	}
	idx, err := s.LogIndex(ctx, "logs")
	if err != nil || len(idx) != 2 {
		t.Fatalf("LogIndex = %v, %v; want 2 entries", idx, err)
	}
	u1 := idx["u1"]
	if u1.ErrorCode == nil || *u1.ErrorCode != 1 || u1.EndState == nil || !u1.EndState.Is(api.StateFailed) || u1.Error != "boom" {
		t.Fatalf("u1 after update = %+v", u1)
	}
	if err := s.DeleteLogEntries(ctx, "logs", []string{"u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LogEntry(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted entry still found: %v", err)
	}
	if _, err := s.LogEntry(ctx, "u2"); err != nil {
		t.Fatalf("other entry lost: %v", err)
	}
}

func testConcurrentLogEntries(t *testing.T, s store.Store) {
	mustCreate(t, s, "many")
	const n = 50
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uuid := fmt.Sprintf("u%03d", i)
			if err := s.PutLogEntry(context.Background(), uuid, api.LogEntry{Deployment: "many", LogPath: uuid}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	idx, err := s.LogIndex(context.Background(), "many")
	if err != nil || len(idx) != n {
		t.Fatalf("after %d concurrent puts the index has %d entries (%v)", n, len(idx), err)
	}
}

func testStateRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s, "states")
	uuid := "abc"
	for _, st := range []api.DeploymentState{
		api.StateIsRunning, api.StateIsUp,
		api.FailedState(api.Command{Name: api.CmdUp, Up: api.UpOptions{Provision: true}}),
		api.FailedState(api.Command{Name: api.CmdGenerateArtefacts}),
		api.StateIsDown,
	} {
		if _, err := s.UpdateDeployment(ctx, "states", func(d *api.Deployment) error {
			d.State, d.LastActionUUID = st, &uuid
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		d, err := s.Deployment(ctx, "states")
		if err != nil {
			t.Fatal(err)
		}
		if d.State.String() != st.String() || d.LastActionUUID == nil || *d.LastActionUUID != uuid {
			t.Fatalf("state %v came back as %v", st, d.State)
		}
		if st.Kind == api.StateFailed && d.State.Failed.Up != st.Failed.Up {
			t.Fatalf("failed command options lost: %+v", d.State.Failed)
		}
	}
}

func testDeployedRecord(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Deployed(ctx, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Deployed of nothing: %v, want ErrNotFound", err)
	}
	if err := s.DeleteDeployed(ctx, "web"); err != nil {
		t.Fatalf("DeleteDeployed of nothing: %v", err)
	}
	for _, bad := range []string{"../x", "a/b", ""} {
		if err := s.PutDeployed(ctx, bad, []byte(`{}`)); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("PutDeployed(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if err := s.PutDeployed(ctx, "web", []byte(`not json`)); err == nil {
		t.Error("PutDeployed took a record that is not JSON")
	}
	// A record needs no deployment: it outlives a forced delete.
	mustCreate(t, s, "web")
	for _, rec := range []string{`{"v":1}`, `{"v":2,"hosts":{"a":{}}}`} {
		if err := s.PutDeployed(ctx, "web", []byte(rec)); err != nil {
			t.Fatalf("PutDeployed: %v", err)
		}
		got, err := s.Deployed(ctx, "web")
		if err != nil || string(got) != rec {
			t.Fatalf("Deployed = %s, %v; want %s", got, err, rec)
		}
	}
	if err := s.PutDeployed(ctx, "other", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeployment(ctx, "web", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Deployed(ctx, "web"); err != nil || string(got) != `{"v":2,"hosts":{"a":{}}}` {
		t.Fatalf("record after deleting the deployment: %s, %v", got, err)
	}
	names, err := s.DeployedNames(ctx)
	if err != nil || fmt.Sprint(names) != "[other web]" {
		t.Fatalf("DeployedNames = %v, %v", names, err)
	}
	if err := s.DeleteDeployed(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deployed(ctx, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Deployed after delete: %v, want ErrNotFound", err)
	}
}
