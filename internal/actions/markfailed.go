package actions

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/api"
)

// MarkFailed sets deployment name to {"failed": cmd} without an action,
// unless an action runs on it: what restore after a restart does with
// TESTBEDOS_RESTORE=off, so the user sees that the deployment is not what
// its state said.
func (r *Runner) MarkFailed(ctx context.Context, name string, cmd api.Command, why string) error {
	failed := api.FailedState(cmd)
	if _, err := r.opts.Store.UpdateDeployment(ctx, name, func(d *api.Deployment) error {
		if d.State.Is(api.StateRunning) {
			return busy(name, d.LastActionUUID)
		}
		d.State = failed
		return nil
	}); err != nil {
		return fmt.Errorf("mark %s failed: %w", name, err)
	}
	r.publishState(name, "", failed)
	r.opts.Logger.Warn("deployment marked failed", "deployment", name, "why", why)
	return nil
}
