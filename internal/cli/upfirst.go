package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

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

// explainMissing says, for a deployment the server does not know, what is
// missing: kvm-compose.yaml itself when this folder has none (the user is
// in the wrong folder), else the deployment (create it).
func (a *app) explainMissing(err error, name string) error {
	if client.StatusOf(err) != http.StatusNotFound {
		return err
	}
	in, aerr := filepath.Abs(a.input)
	if aerr == nil {
		if _, serr := os.Stat(in); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("no %s in %s, and the server has no deployment %s: run kvm-compose in a project folder, "+
				"or name the file with --input PATH or a deployment with --project-name NAME (kvm-compose deployment list shows them)",
				filepath.Base(in), filepath.Dir(in), name)
		}
	}
	return explain(err, name)
}
