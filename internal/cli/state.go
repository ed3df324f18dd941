package cli

import (
	"context"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// stateText is how the CLI shows a deployment's state: as the server has
// it, except that a failed state left by a cancelled action reads
// "cancelled(up)" (the API keeps the original's {"failed": …} shape; the
// cancel is in the action's error code).
func (a *app) stateText(ctx context.Context, c *client.Client, d api.Deployment) string {
	if !d.State.Is(api.StateFailed) || d.LastActionUUID == nil {
		return d.State.String()
	}
	e, err := c.LogEntry(ctx, *d.LastActionUUID)
	if err != nil || e.ErrorCode == nil {
		return d.State.String()
	}
	return d.State.TextAfter(*e.ErrorCode)
}
