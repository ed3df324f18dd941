package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
)

// hostCleaner is the engine's clean-up of one host (engine.CleanHost).
type hostCleaner interface {
	CleanHost(ctx context.Context, d api.Deployment, host string, log actlog.Log) (bool, error)
}

// cleanEvery is how often the main also looks for leftovers of down
// deployments on its members: a client that restarted within the
// heart-beat window never left the cluster, so it never joins again.
const cleanEvery = 30 * time.Second

// cleanReturningHosts cleans a member that was offline during a down once
// it comes back: whenever a member joins, and every
// cleanEvery for every member, what deployments that are down (or
// forgotten) still have recorded on it is removed.
func (s *Server) cleanReturningHosts(ctx context.Context, sub <-chan api.Event) {
	cleaner, ok := s.exec.(hostCleaner)
	if !ok {
		return
	}
	t := time.NewTicker(cleanEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub:
			if !ok {
				return
			}
			if e.Type == api.EventMemberJoined {
				s.cleanHost(ctx, cleaner, e.Member)
			}
		case <-t.C:
			for _, m := range s.members.List() {
				s.cleanHost(ctx, cleaner, m.Name)
			}
		}
	}
}

func (s *Server) cleanHost(ctx context.Context, c hostCleaner, host string) {
	names, err := s.store.DeployedNames(ctx)
	if err != nil {
		s.log.Error("cleaning a returning host", "host", host, "err", err)
		return
	}
	for _, name := range names {
		d, err := s.store.Deployment(ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			d = api.Deployment{Name: name} // forgotten with --force
		case err != nil:
			s.log.Error("cleaning a returning host", "host", host, "deployment", name, "err", err)
			continue
		case !d.State.Is(api.StateDown):
			continue // up, or an action runs: its objects there are meant to be
		}
		log := s.log.With("host", host, "deployment", name)
		cleaned, err := c.CleanHost(ctx, d, host, slogLog{log})
		switch {
		case err != nil:
			log.Error("cleaning what a down left on a host that was offline", "err", err)
		case cleaned:
			log.Info("cleaned what a down left on a host that was offline")
		}
	}
}

// slogLog writes an action log's lines to the server log.
type slogLog struct{ log *slog.Logger }

func (l slogLog) Printf(format string, args ...any) { l.log.Info(fmt.Sprintf(format, args...)) }

func (l slogLog) Writer(prefix string) io.WriteCloser { return lineLogger{l.log, prefix} }

type lineLogger struct {
	log    *slog.Logger
	prefix string
}

func (w lineLogger) Write(p []byte) (int, error) {
	w.log.Info(w.prefix + string(p))
	return len(p), nil
}

func (w lineLogger) Close() error { return nil }
