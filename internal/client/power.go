package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/testbedos/testbedos/internal/api"
)

// Power starts the power action of a guest (api.PowerStopped,
// api.PowerRunning or api.PowerRestarted) and returns its uuid.
func (c *Client) Power(ctx context.Context, name, guest, state string) (string, error) {
	var out api.ActionAccepted
	err := c.do(ctx, http.MethodPost, guestPath(name, guest)+"/power", api.PowerRequest{State: state}, &out)
	return out.UUID, err
}

// ExecAll runs one command in many guests at once (all of them when
// req.Guests is empty) and returns one result per guest.
func (c *Client) ExecAll(ctx context.Context, name string, req api.FanoutExecRequest) (api.FanoutExecResult, error) {
	var out api.FanoutExecResult
	err := c.do(ctx, http.MethodPost, "/api/deployments/"+url.PathEscape(name)+"/exec", req, &out)
	return out, err
}
