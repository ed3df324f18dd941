package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"github.com/testbedos/testbedos/internal/client"
)

// explain adds a hint to the error users hit most: a 404 for the
// deployment itself (not for a guest or a file of one that exists) says
// what is missing, as explainMissing has it.
func (a *app) explain(ctx context.Context, c *client.Client, err error, name string) error {
	if client.StatusOf(err) != http.StatusNotFound {
		return err
	}
	if _, derr := c.Deployment(ctx, name); client.StatusOf(derr) != http.StatusNotFound {
		return err // the deployment exists: something in it is missing
	}
	return a.explainMissing(err, name)
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
	return fmt.Errorf("%w\nhint: create it first with: kvm-compose deployment create %s", err, name)
}
