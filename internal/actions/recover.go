package actions

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/api"
)

// Recover runs at start, before any action: actions that were running when
// the server died are marked failed with the interrupted error code, and
// their deployments leave the running state. It returns how many it fixed.
func (r *Runner) Recover(ctx context.Context) (int, error) {
	deployments, err := r.opts.Store.Deployments(ctx)
	if err != nil {
		return 0, fmt.Errorf("recover: %w", err)
	}
	fixed := 0
	for _, d := range deployments {
		idx, err := r.opts.Store.LogIndex(ctx, d.Name)
		if err != nil {
			return fixed, fmt.Errorf("recover %s: %w", d.Name, err)
		}
		for id, e := range idx {
			if e.Finished() {
				continue
			}
			code, end := api.ErrorCodeInterrupted, api.FailedState(e.Command)
			e.ErrorCode, e.EndState, e.Error = &code, &end, "interrupted: the server stopped while the action was running"
			if err := r.opts.Store.PutLogEntry(ctx, id, e); err != nil {
				return fixed, fmt.Errorf("recover %s: %w", d.Name, err)
			}
			fixed++
			r.publish(api.Event{Type: api.EventActionEnded, Deployment: d.Name, UUID: id, Command: &e.Command,
				State: &end, ErrorCode: &code, Error: e.Error})
			r.opts.Logger.Warn("marked interrupted action failed", "deployment", d.Name, "uuid", id, "command", e.Command.String())
		}
		if !d.State.Is(api.StateRunning) {
			continue
		}
		cmd := api.Command{}
		var last api.LogEntry
		if d.LastActionUUID != nil {
			last = idx[*d.LastActionUUID]
			cmd = last.Command
		}
		state := api.FailedState(cmd)
		if last.Finished() && last.EndState != nil {
			// The server stopped between storing the action's entry and
			// the deployment's state: the entry says how it ended.
			state = *last.EndState
		}
		if _, err := r.opts.Store.UpdateDeployment(ctx, d.Name, func(d *api.Deployment) error {
			d.State = state
			return nil
		}); err != nil {
			return fixed, fmt.Errorf("recover %s: %w", d.Name, err)
		}
		r.publishState(d.Name, "", state)
		r.opts.Logger.Warn("deployment was left running", "deployment", d.Name, "now", state.String())
	}
	return fixed, nil
}
