package actions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/events"
)

// A Ctrl-C that arrives after action A ended must not cancel action B.
func TestCancelByUUIDNeverHitsTheNextAction(t *testing.T) {
	f := newFixture(t)
	close(f.exec.release)
	a, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, a)
	if _, err := f.runner.Cancel("dep", a); !errors.Is(err, ErrNotTheRunningAction) || !strings.Contains(err.Error(), "no action is running") {
		t.Fatalf("cancel of an ended action with nothing running: %v", err)
	}
	f.exec.release = make(chan struct{})
	b, err := f.runner.Start(context.Background(), "dep", api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.runner.Cancel("dep", a)
	if !errors.Is(err, ErrNotTheRunningAction) || !strings.Contains(err.Error(), b) {
		t.Fatalf("cancel with A's uuid while B runs: %v, want ErrNotTheRunningAction naming %s", err, b)
	}
	if got, ok := f.runner.Running("dep"); !ok || got != b {
		t.Fatalf("after the stale cancel: running %q %v, want B %s", got, ok, b)
	}
	close(f.exec.release)
	if e, _ := f.wait(t, b); *e.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("B was hit by the cancel meant for A: %+v", e)
	}
}

func TestCancelByItsOwnUUID(t *testing.T) {
	f := newFixture(t)
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.runner.Cancel("dep", id); err != nil || got != id {
		t.Fatalf("Cancel = %q, %v", got, err)
	}
	if e, _ := f.wait(t, id); *e.ErrorCode != api.ErrorCodeCancelled {
		t.Fatalf("entry = %+v", e)
	}
}

func TestStartAfterShutdownIsRefused(t *testing.T) {
	f := newFixture(t)
	if err := f.runner.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := f.runner.Start(context.Background(), "dep", up())
	if !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("start after shutdown: %v, want ErrShuttingDown", err)
	}
	if d, _ := f.store.Deployment(context.Background(), "dep"); d.LastActionUUID != nil || !d.State.Is(api.StateDown) {
		t.Fatalf("a refused action was recorded: %+v", d)
	}
}

// A snapshot action never changes the deployment's state.
func TestSnapshotNeverChangesTheState(t *testing.T) {
	snap := api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot},
		Snapshot: &api.SnapshotOptions{SubCommand: "create", Guest: "vm1", Name: "s1"}}
	for _, tc := range []struct {
		name string
		prev api.DeploymentState
		fail error
		code int
	}{
		{"up stays up after a failed snapshot", api.StateIsUp, errors.New("guest vm1 takes no snapshots"), api.ErrorCodeFailed},
		{"up stays up after a snapshot", api.StateIsUp, nil, api.ErrorCodeOK},
		{"down stays down after a failed snapshot", api.StateIsDown, errors.New("guest vm1 is not running"), api.ErrorCodeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.exec.snapshots, f.exec.fail = true, tc.fail
			close(f.exec.release)
			f.store.UpdateDeployment(context.Background(), "dep", func(d *api.Deployment) error {
				d.State = tc.prev
				return nil
			})
			id, err := f.runner.Start(context.Background(), "dep", snap)
			if err != nil {
				t.Fatal(err)
			}
			e, _ := f.wait(t, id)
			if *e.ErrorCode != tc.code || !e.EndState.Is(tc.prev.Kind) {
				t.Fatalf("entry = code %d, end state %v, want %d and %v", *e.ErrorCode, e.EndState, tc.code, tc.prev)
			}
			if tc.fail != nil && e.Error != tc.fail.Error() {
				t.Errorf("entry error %q, want %q", e.Error, tc.fail)
			}
			if st := f.state(t); !st.Is(tc.prev.Kind) {
				t.Fatalf("state after the snapshot = %v, want %v", st, tc.prev)
			}
		})
	}
}

func TestWaitAndList(t *testing.T) {
	f := newFixture(t)
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	ops := f.runner.List()
	if len(ops) != 1 || ops[0].UUID != id || ops[0].Deployment != "dep" || ops[0].Command.Name != api.CmdUp {
		t.Fatalf("List = %+v", ops)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.runner.Wait(short, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running action with a short ctx: %v", err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		close(f.exec.release)
	}()
	e, err := f.runner.Wait(context.Background(), id)
	if err != nil || e.ErrorCode == nil || *e.ErrorCode != 0 || !e.EndState.Is(api.StateUp) {
		t.Fatalf("Wait = %+v, %v", e, err)
	}
	if ops := f.runner.List(); len(ops) != 0 {
		t.Fatalf("List after the end = %+v", ops)
	}
	if e, err := f.runner.Wait(context.Background(), id); err != nil || *e.ErrorCode != 0 {
		t.Fatalf("Wait on an ended action = %+v, %v", e, err)
	}
	if _, err := f.runner.Wait(context.Background(), "no-such-action"); err == nil {
		t.Fatal("Wait on an unknown action succeeded")
	}
}

func TestEventsOfAnAction(t *testing.T) {
	f := newFixture(t)
	hub := events.New(16)
	f.runner.opts.Events = hub
	sub := hub.Subscribe()
	close(f.exec.release)
	id, err := f.runner.Start(context.Background(), "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	f.runner.Wait(context.Background(), id)
	hub.Close()
	var got []string
	for e := range sub.C {
		if e.UUID != id || e.Deployment != "dep" || e.Time.IsZero() {
			t.Errorf("event %+v", e)
		}
		s := string(e.Type)
		if e.State != nil {
			s += " " + e.State.String()
		}
		got = append(got, s)
	}
	want := "action-started|deployment-state running|action-ended up|deployment-state up"
	if strings.Join(got, "|") != want {
		t.Fatalf("events %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestRecoverPublishes(t *testing.T) {
	f := newFixture(t)
	hub := events.New(16)
	f.runner.opts.Events = hub
	sub := hub.Subscribe()
	ctx := context.Background()
	id := "left-over"
	f.store.UpdateDeployment(ctx, "dep", func(d *api.Deployment) error {
		d.State, d.LastActionUUID = api.StateIsRunning, &id
		return nil
	})
	f.store.PutLogEntry(ctx, id, api.LogEntry{Deployment: "dep", LogPath: "/x", Command: api.Command{Name: api.CmdUp}})
	if _, err := f.runner.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	hub.Close()
	var types []api.EventType
	for e := range sub.C {
		types = append(types, e.Type)
		if e.Type == api.EventActionEnded && (e.ErrorCode == nil || *e.ErrorCode != api.ErrorCodeInterrupted) {
			t.Errorf("action-ended %+v", e)
		}
		if e.Type == api.EventDeploymentState && !e.State.Is(api.StateFailed) {
			t.Errorf("deployment-state %+v", e)
		}
	}
	if len(types) != 2 || types[0] != api.EventActionEnded || types[1] != api.EventDeploymentState {
		t.Fatalf("events %v", types)
	}
}
