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
		if d.LastActionUUID != nil {
			cmd = idx[*d.LastActionUUID].Command
		}
		failed := api.FailedState(cmd)
		if _, err := r.opts.Store.UpdateDeployment(ctx, d.Name, func(d *api.Deployment) error {
			d.State = failed
			return nil
		}); err != nil {
			return fixed, fmt.Errorf("recover %s: %w", d.Name, err)
		}
		r.publishState(d.Name, "", failed)
		r.opts.Logger.Warn("deployment was left running; now failed", "deployment", d.Name)
	}
	return fixed, nil
}
