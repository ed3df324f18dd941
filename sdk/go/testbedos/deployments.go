package testbedos

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

func depPath(name string) string { return "/api/deployments/" + url.PathEscape(name) }

// Deployments lists the deployments by name (GET /api/deployments).
func (c *Client) Deployments(ctx context.Context) (map[string]Deployment, error) {
	return c.c.Deployments(ctx)
}

// Deployment returns one deployment (GET /api/deployments/{name}).
func (c *Client) Deployment(ctx context.Context, name string) (Deployment, error) {
	return c.c.Deployment(ctx, name)
}

// CreateDeployment adds a deployment of the project folder projectLocation,
// an absolute path on the server holding kvm-compose.yaml.
func (c *Client) CreateDeployment(ctx context.Context, name, projectLocation string) (Deployment, error) {
	return c.c.CreateDeployment(ctx, name, projectLocation)
}

// UpdateDeployment moves a deployment that is down to another project folder.
func (c *Client) UpdateDeployment(ctx context.Context, name, projectLocation string) (Deployment, error) {
	return c.c.UpdateDeployment(ctx, name, projectLocation)
}

// DeleteDeployment forgets a deployment that is down; force forgets one in
// any other state too (nothing is torn down).
func (c *Client) DeleteDeployment(ctx context.Context, name string, force bool) error {
	return c.c.DeleteDeployment(ctx, name, force)
}

// Action starts an action on a deployment and returns its uuid at once
// (POST …/action); Follow or Run wait for it.
func (c *Client) Action(ctx context.Context, name string, req ActionRequest) (string, error) {
	return c.c.Action(ctx, name, req)
}

// Run starts the action cmd, follows its log to the end (each line to
// onLine, which may be nil) and returns its outcome: ErrorCode 0 is
// success.
func (c *Client) Run(ctx context.Context, name string, cmd CommandName, onLine func(line string)) (Outcome, error) {
	id, err := c.c.Action(ctx, name, ActionRequest{Command: Command{Name: cmd}})
	if err != nil {
		return Outcome{}, err
	}
	if onLine == nil {
		onLine = func(string) {}
	}
	return c.c.Follow(ctx, id, onLine)
}

// Cancel stops the running action of a deployment and returns its uuid;
// with a uuid, only when that is the one running (else a 409).
func (c *Client) Cancel(ctx context.Context, name, uuid string) (string, error) {
	return c.c.Cancel(ctx, name, uuid)
}

// State returns the deployment's resolved state (state.json) as JSON.
func (c *Client) State(ctx context.Context, name string) (json.RawMessage, error) {
	return c.c.State(ctx, name)
}

// Plan returns what apply would change on a deployment that is up.
func (c *Client) Plan(ctx context.Context, name string) (Plan, error) {
	return c.c.Plan(ctx, name)
}

// Logs returns the logs index of a deployment: action uuid → entry.
func (c *Client) Logs(ctx context.Context, name string) (LogIndex, error) {
	return c.c.Logs(ctx, name)
}

// Actions returns a page of the deployment's past actions, newest first:
// at most limit (0: the server's default) from offset on.
func (c *Client) Actions(ctx context.Context, name string, limit, offset int) (ActionPage, error) {
	return c.c.Actions(ctx, name, limit, offset)
}

// LogEntry returns one action's record (GET /api/logs/{uuid}).
func (c *Client) LogEntry(ctx context.Context, uuid string) (LogEntry, error) {
	return c.c.LogEntry(ctx, uuid)
}

// LogText returns one action's log as written so far.
func (c *Client) LogText(ctx context.Context, uuid string) (string, error) {
	return c.c.LogText(ctx, uuid)
}

// Follow streams an action's log (every line so far, then each new one) to
// onLine and returns the outcome once the action ends.
func (c *Client) Follow(ctx context.Context, uuid string, onLine func(line string)) (Outcome, error) {
	return c.c.Follow(ctx, uuid, onLine)
}

// Events calls fn with every server event (deployment states, actions
// started and ended, cluster members) until ctx ends or fn returns an
// error.
func (c *Client) Events(ctx context.Context, fn func(e Event, raw json.RawMessage) error) error {
	return c.c.Events(ctx, fn)
}

// Guests lists a deployment's guests with kind, host, interfaces (leases
// too), status and resource use.
func (c *Client) Guests(ctx context.Context, name string) ([]Guest, error) {
	var out []Guest
	err := c.c.Do(ctx, http.MethodGet, depPath(name)+"/guests", nil, &out)
	return out, err
}
