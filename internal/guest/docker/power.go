package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/topology"
)

var _ guest.PowerSwitch = (*Driver)(nil)

// stopGraceS is how long a stop waits for the container's command to end
// on SIGTERM before dockerd kills it.
const stopGraceS = 3

// Stop stops the container (docker stop: SIGTERM, then SIGKILL after a
// few seconds). Its network namespace goes with its last process, and the
// veths with it; those still there after vethTimeout are deleted, so
// Start can make them again.
func (d *Driver) Stop(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	s, err := spec(g)
	if err != nil {
		return err
	}
	c, ok, err := d.inspect(ctx, s.Container)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("guest %s: container %s is not there: run up", g.Name, s.Container)
	}
	if f := d.verdict(dep, g, c); f.Presence == guest.Foreign {
		return fmt.Errorf("guest %s: %s: %w", g.Name, f.What, guest.ErrForeign)
	}
	veths, err := presentVeths(g)
	if err != nil {
		return err
	}
	gone := d.links.Expect(veths...)
	defer gone.Close()
	grace := stopGraceS
	if _, err := d.cli.ContainerStop(ctx, s.Container, client.ContainerStopOptions{Timeout: &grace}); err != nil {
		return fmt.Errorf("guest %s: stop container %s: %w", g.Name, s.Container, d.daemonErr(err))
	}
	if len(veths) > 0 {
		wctx, cancel := context.WithTimeout(ctx, vethTimeout)
		werr := gone.Wait(wctx)
		cancel()
		if werr != nil {
			var errs []error
			for _, v := range veths {
				errs = append(errs, links.Delete(v))
			}
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("guest %s: %w", g.Name, err)
			}
		}
	}
	log.Printf("docker %s: container %s stopped", g.Name, s.Container)
	return nil
}

// Start starts the stopped container again (its command runs anew, its
// file system is as it was) and plugs its interfaces into their bridges
// again. A running container is left as it is.
func (d *Driver) Start(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	s, err := spec(g)
	if err != nil {
		return err
	}
	if ok, err := d.Exists(ctx, dep, g); err != nil || ok {
		return err
	}
	c, ok, err := d.inspect(ctx, s.Container)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("guest %s: container %s is not there: run up", g.Name, s.Container)
	}
	if f := d.verdict(dep, g, c); f.Presence == guest.Foreign {
		return fmt.Errorf("guest %s: %s: %w", g.Name, f.What, guest.ErrForeign)
	}
	if c.State != nil && c.State.Running {
		// Running without all its interfaces: stop it first, so they are
		// made whole again.
		if err := d.Stop(ctx, dep, g, log); err != nil {
			return err
		}
	}
	ifaces, err := links.PlanGuestIfaces(g.Interfaces, links.Plan{Unbridged: !dep.Bridged(), GuestTxOff: dep.GuestTxOffloadOff()})
	if err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	if err := d.start(ctx, dep, g, s, ifaces); err != nil {
		return err
	}
	log.Printf("docker %s: container %s started again with %d interfaces", g.Name, s.Container, len(ifaces))
	return nil
}
