package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// generateFirst makes an up of a deployment that is down and has no
// artefacts yet generate them first, in the same action, and says so in
// one line.
func (a *app) generateFirst(ctx context.Context, c *client.Client, name string, req api.ActionRequest) (api.ActionRequest, error) {
	if req.Command.Name != api.CmdUp || req.GenerateArtefacts {
		return req, nil
	}
	d, err := c.Deployment(ctx, name)
	if err != nil {
		return req, a.explainMissing(err, name)
	}
	if !d.State.Is(api.StateDown) {
		// Only a deployment that is down can be without artefacts; one
		// that is up or failed keeps its own, whatever the project folder
		// holds.
		return req, nil
	}
	_, err = c.State(ctx, name)
	switch {
	case err == nil:
		return req, nil
	case client.StatusOf(err) == http.StatusNotFound:
		fmt.Fprintf(a.stderr, "kvm-compose: deployment %s has no artefacts yet: generating them first\n", name)
		req.GenerateArtefacts = true
		return req, nil
	}
	return req, err
}
