package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

// pruneEvery is how often old orchestration logs are deleted.
const pruneEvery = time.Hour

// pruneLogs deletes old orchestration logs at start and then periodically,
// until ctx ends.
func (s *Server) pruneLogs(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		n, err := s.prune(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("pruning orchestration logs", "err", err)
		} else if n > 0 {
			s.log.Info("pruned orchestration logs", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops in this order: no new actions, running actions
// interrupted and recorded, log streams and background jobs ended (each
// waited for until ctx ends), then the store closed, the OVS/OVN daemons
// the server runs (the ovn backend) stopped, the data folder's lock
// released last.
func (s *Server) Close(ctx context.Context) error {
	return errors.Join(s.interrupt(ctx), s.release(ctx))
}

// interrupt refuses new actions, stops the background jobs and interrupts
// the running actions, waiting until they are recorded as interrupted.
func (s *Server) interrupt(ctx context.Context) error {
	s.stopping.Store(true)
	if s.liveEnd != nil {
		s.liveEnd()
	}
	s.stopBackground()
	if s.members != nil {
		s.members.Close()
	}
	return s.runner.Shutdown(ctx)
}

// release waits for the log streams and background jobs, closes the store
// and releases the data folder's lock (when New took it), last.
func (s *Server) release(ctx context.Context) error {
	// The interrupted actions' events are out; event streams end now.
	s.events.Close()
	s.streams.close()
	err := waitUntil(ctx, "log and event streams", &s.streams.wg)
	err = errors.Join(err, waitUntil(ctx, "background jobs", &s.background))
	err = errors.Join(err, s.store.Close())
	if s.closeNet != nil {
		// The actions are over: the OVS/OVN daemons the server runs stop.
		s.closeNet()
	}
	if s.ownLock {
		s.lock.Release()
	}
	return err
}

// waitUntil waits for wg, or for ctx to end (an error naming what).
func waitUntil(ctx context.Context, what string, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping: %s did not end: %w", what, ctx.Err())
	}
}

// errStreamsClosed answers a stream asked for once the server stops.
var errStreamsClosed = fmt.Errorf("the server is shutting down: %w", api.ErrUnavailable)

// streamGroup counts the live log and event streams. Once closed it takes no
// new one, so waiting for the group cannot race with a stream starting.
type streamGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// open counts a new stream, or reports false once the group is closed.
func (g *streamGroup) open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *streamGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
