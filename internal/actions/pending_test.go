package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// fullStore refuses every write while full is set, as a full disk does.
type fullStore struct {
	store.Store
	full atomic.Bool
}

func (s *fullStore) refuse() error {
	if s.full.Load() {
		return fmt.Errorf("write record: %w", syscall.ENOSPC)
	}
	return nil
}

func (s *fullStore) UpdateDeployment(ctx context.Context, name string, fn func(*api.Deployment) error) (api.Deployment, error) {
	if err := s.refuse(); err != nil {
		return api.Deployment{}, err
	}
	return s.Store.UpdateDeployment(ctx, name, fn)
}

func (s *fullStore) PutLogEntry(ctx context.Context, id string, e api.LogEntry) error {
	if err := s.refuse(); err != nil {
		return err
	}
	return s.Store.PutLogEntry(ctx, id, e)
}

// syncBuffer is a log sink tests read while the runner writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fullDiskRunner starts an up action on "dep", fills the disk, lets the
// action end and returns once its outcome is served from memory.
func fullDiskRunner(t *testing.T) (*Runner, *fullStore, *syncBuffer, string) {
	t.Helper()
	dir, fs, hub := openStore(t)
	s := &fullStore{Store: fs}
	logs := &syncBuffer{}
	exec := &fakeExecutor{release: make(chan struct{})}
	r := NewRunner(Options{Store: s, Hub: hub, Executor: exec, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := context.Background()
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "dep", ProjectLocation: dir}); err != nil {
		t.Fatal(err)
	}
	id, err := r.Start(ctx, "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	s.full.Store(true)
	close(exec.release)
	if e, err := r.Wait(ctx, id); err != nil || *e.ErrorCode != api.ErrorCodeOK || !e.EndState.Is(api.StateUp) {
		t.Fatalf("Wait on a full disk: %+v, %v; want the outcome from memory", e, err)
	}
	return r, s, logs, id
}

func TestUnwrittenOutcomeIsServedAndRetried(t *testing.T) {
	r, s, logs, id := fullDiskRunner(t)
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	ctx := context.Background()

	if d, err := r.Records().Deployment(ctx, "dep"); err != nil || !d.State.Is(api.StateUp) {
		t.Fatalf("served deployment: %+v, %v; want up", d, err)
	}
	if d, _ := s.Store.Deployment(ctx, "dep"); !d.State.Is(api.StateRunning) {
		t.Fatalf("stored state %v: the disk is full, it cannot have been written", d.State)
	}
	if idx, err := r.Records().LogIndex(ctx, "dep"); err != nil || !idx[id].Finished() {
		t.Fatalf("served index: %+v, %v", idx, err)
	}
	_, err := r.Start(ctx, "dep", up())
	if !errors.Is(err, ErrOutcomeUnwritten) || !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "the disk is full") {
		t.Fatalf("Start with the outcome unwritten: %v", err)
	}
	if _, err := r.Cancel("dep", ""); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Cancel: %v, want ErrNotRunning", err)
	}
	if !strings.Contains(logs.String(), "kept in memory") {
		t.Fatalf("no error logged:\n%s", logs)
	}

	// Space comes back: the retry loop writes the outcome by itself.
	s.full.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _ := s.Store.Deployment(ctx, "dep")
		e, _ := s.Store.LogEntry(ctx, id)
		if d.State.Is(api.StateUp) && e.Finished() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcome not written once space came back: %+v %+v", d, e)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := r.Start(ctx, "dep", up()); err != nil {
		t.Fatalf("Start once written: %v", err)
	}
}

func TestUnwrittenOutcomeAtShutdown(t *testing.T) {
	t.Run("written when there is room", func(t *testing.T) {
		r, s, _, id := fullDiskRunner(t)
		s.full.Store(false)
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if e, _ := s.Store.LogEntry(context.Background(), id); !e.Finished() {
			t.Fatalf("entry after shutdown: %+v", e)
		}
	})
	t.Run("said loudly when lost", func(t *testing.T) {
		r, _, logs, id := fullDiskRunner(t)
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "LOST") || !strings.Contains(logs.String(), id) {
			t.Fatalf("no loud log of the lost outcome:\n%s", logs)
		}
	})
}

// orderStore notes, when an action's end state reaches the deployment,
// whether that action's log entry was already stored finished.
type orderStore struct {
	store.Store
	entryFirst atomic.Bool
	checked    atomic.Bool
}

func (s *orderStore) UpdateDeployment(ctx context.Context, name string, fn func(*api.Deployment) error) (api.Deployment, error) {
	d, err := s.Store.UpdateDeployment(ctx, name, fn)
	if err == nil && d.LastActionUUID != nil && !d.State.Is(api.StateRunning) {
		e, _ := s.Store.LogEntry(ctx, *d.LastActionUUID)
		s.entryFirst.Store(e.Finished())
		s.checked.Store(true)
	}
	return d, err
}

// A client that sees the deployment's new state finds the action's log
// entry finished: the entry is written before the state.
func TestOutcomeEntryStoredBeforeState(t *testing.T) {
	dir, fs, hub := openStore(t)
	s := &orderStore{Store: fs}
	done := make(chan struct{})
	close(done) // the action ends at once
	r := NewRunner(Options{Store: s, Hub: hub, Executor: &fakeExecutor{release: done}, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	ctx := context.Background()
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "dep", ProjectLocation: dir}); err != nil {
		t.Fatal(err)
	}
	id, err := r.Start(ctx, "dep", up())
	if err != nil {
		t.Fatal(err)
	}
	if e, err := r.Wait(ctx, id); err != nil || *e.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("Wait: %+v, %v", e, err)
	}
	if !s.checked.Load() {
		t.Fatal("the end state never reached the deployment")
	}
	if !s.entryFirst.Load() {
		t.Error("the deployment showed the end state while the action's log entry was not finished")
	}
}
