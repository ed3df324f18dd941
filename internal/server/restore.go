package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
)

// restorer tells what a deployment's record holds that does not exist (the
// engine's Missing).
type restorer interface {
	Missing(ctx context.Context, d api.Deployment) ([]string, error)
}

// restoreShown bounds the missing objects a restore's reason names.
const restoreShown = 12

// restore runs once at start, after recovery: every deployment recorded up
// is compared with what exists on its hosts. With restore on, one
// that lost something gets an up action of the server's own, whose log says
// why; with off, it is marked {"failed": "up"}.
func (s *Server) restore(ctx context.Context) {
	r, ok := s.exec.(restorer)
	if !ok {
		return
	}
	deps, err := s.store.Deployments(ctx)
	if err != nil {
		s.log.Error("restore: list deployments", "err", err)
		return
	}
	for _, d := range deps {
		if ctx.Err() != nil {
			return
		}
		if !d.State.Is(api.StateUp) {
			continue
		}
		missing, err := r.Missing(ctx, d)
		if err != nil {
			s.log.Error("restore: check what exists", "deployment", d.Name, "err", err)
			continue
		}
		if len(missing) == 0 {
			continue
		}
		reason := restoreReason(missing)
		up := api.Command{Name: api.CmdUp}
		if s.cfg.Restore == config.RestoreOff {
			if err := s.runner.MarkFailed(ctx, d.Name, up, reason); err != nil {
				s.log.Error("restore: mark failed", "deployment", d.Name, "err", err)
			}
			continue
		}
		id, err := s.runner.StartNoted(ctx, d.Name, api.ActionRequest{Command: up}, reason)
		if err != nil {
			s.log.Error("restore: start up", "deployment", d.Name, "err", err)
			continue
		}
		s.log.Warn("restoring deployment after a restart", "deployment", d.Name, "uuid", id, "missing", len(missing))
	}
}

// restoreReason is the restore action's first log line.
func restoreReason(missing []string) string {
	shown := missing
	more := ""
	if len(shown) > restoreShown {
		shown = shown[:restoreShown]
		more = fmt.Sprintf(" and %d more", len(missing)-restoreShown)
	}
	return "restore: after a restart, missing: " + strings.Join(shown, ", ") + more
}
