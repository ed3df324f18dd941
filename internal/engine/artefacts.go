package engine

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/atomicfile"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/topology"
)

// writeArtefacts makes the deployment's SSH key (kept when there is one)
// and lets every driver that writes per-guest artefacts write them.
func (e *Engine) writeArtefacts(ctx context.Context, st *topology.State, out *atomicfile.Root, log actlog.Log) error {
	key, err := sshkey.Ensure(out, "testbedos-"+st.Deployment)
	if err != nil {
		return err
	}
	log.Printf("deployment SSH key %s", key.Path)
	for i := range st.Guests {
		g := &st.Guests[i]
		// A kind without a driver here has no artefacts to write; up
		// reports the missing driver.
		host, err := e.opts.Hosts.Host(g.Host)
		if err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
		drv, err := host.Driver(g.Kind)
		if err != nil {
			continue
		}
		w, err := guest.As[guest.ArtefactWriter](drv)
		if err != nil {
			continue
		}
		if err := w.WriteArtefacts(ctx, st, g, out, log); err != nil {
			return fmt.Errorf("guest %s: artefacts: %w", g.Name, err)
		}
	}
	return nil
}
