package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/testbedos/testbedos/internal/api"
)

// Plan returns what apply would change on a deployment that is up.
func (c *Client) Plan(ctx context.Context, name string) (api.Plan, error) {
	var out api.Plan
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/plan", nil, &out)
	return out, err
}

// GuestsJSON returns GET /api/deployments/{name}/guests as it came: every
// guest with kind, host, interfaces and status.
func (c *Client) GuestsJSON(ctx context.Context, name string) (json.RawMessage, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/guests", nil, &out)
	return out, err
}
