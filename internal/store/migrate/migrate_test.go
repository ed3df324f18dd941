package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

func openStore(t *testing.T, provider string, loc Locations) store.Store {
	t.Helper()
	s, err := Open(provider, loc, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLocations(t *testing.T) Locations {
	dir := t.TempDir()
	return Locations{FileDir: filepath.Join(dir, "deployments"), DeployedDir: filepath.Join(dir, "deployed"), SQLitePath: filepath.Join(dir, "testbedos.db")}
}

// fill writes deployments in every state shape and log entries running,
// finished, failed and in a non-UTC zone.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	uuid := "6f1c0c2e-0000-4000-8000-000000000001"
	states := []api.DeploymentState{
		{}, api.StateIsDown, api.StateIsUp, api.StateIsRunning,
		api.FailedState(api.Command{Name: api.CmdUp, Up: api.UpOptions{Provision: true, RerunScripts: true}}),
		api.FailedState(api.Command{Name: api.CmdGenerateArtefacts}),
		api.FailedState(api.Command{Name: api.CmdSnapshot, Snapshot: api.SnapshotOptions{SubCommand: "restore", Guest: "vm1", Name: "s1"}}),
	}
	for i, st := range states {
		d := api.Deployment{Name: fmt.Sprintf("dep-%d", i), ProjectLocation: fmt.Sprintf("/srv/p %d/ü", i), State: st}
		if i%2 == 0 {
			d.LastActionUUID = &uuid
		}
		if err := s.CreateDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		for j := range i {
			e := api.LogEntry{
				Deployment:    d.Name,
				LogPath:       fmt.Sprintf("/var/lib/testbedos/logs/orchestration/%d-%d.log", i, j),
				ExecutionTime: time.Date(2026, 11, 25, 10, j, 0, j*1000+7, time.FixedZone("X", (j-2)*3600)),
				Command:       api.Command{Name: api.Commands[j%len(api.Commands)], Up: api.UpOptions{Provision: j%2 == 0}},
			}
			if e.Command.Name != api.CmdUp {
				e.Command.Up = api.UpOptions{}
			}
			if e.Command.Name == api.CmdSnapshot {
				e.Command.Snapshot = api.SnapshotOptions{SubCommand: "list", Guest: "g"}
			}
			if j > 0 { // entry 0 is still running
				code, dur := j%3, int64(j*1500)
				end := states[j%len(states)]
				e.ErrorCode, e.EndState, e.DurationMS = &code, &end, &dur
				if code != 0 {
					e.Error = fmt.Sprintf("step %d failed: \"quoted\"\n", j)
				}
			}
			if err := s.PutLogEntry(ctx, fmt.Sprintf("%s-u%d", d.Name, j), e); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// snapshot is the JSON of every record of s, deployments and indexes.
func snapshot(t *testing.T, s store.Store) string {
	t.Helper()
	ctx := context.Background()
	list, err := s.Deployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]any{"deployments": list}
	for _, d := range list {
		idx, err := s.LogIndex(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		all["logs/"+d.Name] = idx
	}
	data, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestRoundTripFileSQLiteFile(t *testing.T) {
	ctx := context.Background()
	first, middle, last := newLocations(t), newLocations(t), newLocations(t)
	src := openStore(t, "file", first)
	fill(t, src)
	want := snapshot(t, src)

	db := openStore(t, "sqlite", middle)
	r, err := Copy(ctx, src, db)
	if err != nil {
		t.Fatal(err)
	}
	if r.Deployments != 7 || r.LogEntries != 21 || r.Overwritten != 0 {
		t.Fatalf("file -> sqlite report %+v, want 7 deployments and 21 entries", r)
	}
	if got := snapshot(t, db); got != want {
		t.Fatalf("sqlite copy differs from the file records:\n%s\nwant\n%s", got, want)
	}

	back := openStore(t, "file", last)
	if _, err := Copy(ctx, db, back); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, back); got != want {
		t.Fatalf("file -> sqlite -> file differs:\n%s\nwant\n%s", got, want)
	}
	// LogEntry by uuid works in the copy too (the uuid index is rebuilt).
	if e, err := back.LogEntry(ctx, "dep-6-u5"); err != nil || e.Deployment != "dep-6" {
		t.Fatalf("LogEntry in the copy: %+v, %v", e, err)
	}
}

func TestCopyRefusesTakenNames(t *testing.T) {
	ctx := context.Background()
	from := openStore(t, "file", newLocations(t))
	to := openStore(t, "sqlite", newLocations(t))
	fill(t, from)
	theirs := api.Deployment{Name: "dep-3", ProjectLocation: "/theirs"}
	if err := to.CreateDeployment(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	to.PutLogEntry(ctx, "theirs-u", api.LogEntry{Deployment: "dep-3"})

	r, err := Copy(ctx, from, to)
	if !errors.Is(err, store.ErrExists) || !strings.Contains(err.Error(), "dep-3") {
		t.Fatalf("copy onto a taken name: %v, want ErrExists naming dep-3", err)
	}
	if list, _ := to.Deployments(ctx); len(list) != 1 || r != (Report{}) {
		t.Fatalf("a refused copy wrote %d deployments (report %+v)", len(list)-1, r)
	}

	r, err = Options{Overwrite: true}.Copy(ctx, from, to)
	if err != nil || r.Deployments != 7 || r.Overwritten != 1 {
		t.Fatalf("overwrite: %+v, %v", r, err)
	}
	if got, want := snapshot(t, to), snapshot(t, from); got != want {
		t.Fatalf("after overwrite the destination differs:\n%s\nwant\n%s", got, want)
	}
	if _, err := to.LogEntry(ctx, "theirs-u"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the overwritten deployment kept its old log entry: %v", err)
	}
}

func TestOpen(t *testing.T) {
	loc := newLocations(t)
	if _, err := Open("file", loc, true); err == nil {
		t.Error("a missing source folder opened")
	}
	if _, err := Open("sqlite", loc, true); err == nil {
		t.Error("a missing source database opened")
	}
	if _, err := Open("postgres", loc, false); err == nil {
		t.Error("an unknown provider opened")
	}
	for _, p := range Providers {
		s, err := Open(p, loc, false)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		s.Close()
		if s, err = Open(p, loc, true); err != nil {
			t.Fatalf("%s once created: %v", p, err)
		}
		s.Close()
	}
}

func TestCopyStopsOnCancel(t *testing.T) {
	from := openStore(t, "file", newLocations(t))
	to := openStore(t, "sqlite", newLocations(t))
	fill(t, from)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Copy(ctx, from, to); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
}

func TestReportString(t *testing.T) {
	for _, tc := range []struct {
		r    Report
		want string
	}{
		{Report{}, "copied 0 deployments and 0 log entries"},
		{Report{Deployments: 1, LogEntries: 1}, "copied 1 deployment and 1 log entry"},
		{Report{Deployments: 3, Overwritten: 2, LogEntries: 12}, "copied 3 deployments and 12 log entries (2 overwritten)"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v = %q, want %q", tc.r, got, tc.want)
		}
	}
}
