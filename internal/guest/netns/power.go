package netns

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

var _ guest.PowerSwitch = (*Driver)(nil)

// A netns guest has no program of its own to stop: it is a namespace
// with interfaces, and the processes that exec, the console and scripts
// started in it. Stop kills every one of those processes and sets the
// host ends of its veths down, so no frame goes in or out (the guest's
// ends lose their carrier; addresses and routes stay). Start sets the host
// ends up again and starts nothing: the guest is as it was after up,
// without the processes it had. The namespace itself stays throughout.

// Stop kills the processes inside the guest's namespace and sets its
// links down.
func (d *Driver) Stop(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	ns, err := namespaceOf(g)
	if err != nil {
		return err
	}
	path := netnsPath(ns)
	if ok, err := namespace.Mounted(path); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("guest %s: namespace %s is not there: run up", g.Name, ns)
		}
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if err := setHostEnds(g, false); err != nil {
		return err
	}
	killed, err := d.procs.killMembers(ctx, nsID(st.Ino))
	if err != nil {
		return fmt.Errorf("guest %s: stop processes in %s: %w", g.Name, ns, err)
	}
	log.Printf("    guest %s: stopped: killed %d processes, links down", g.Name, killed)
	return nil
}

// Start sets the host ends of the guest's veths up again.
func (d *Driver) Start(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	if err := setHostEnds(g, true); err != nil {
		return err
	}
	log.Printf("    guest %s: started: links up", g.Name)
	return nil
}

// setHostEnds sets the host ends of g's veths up or down.
func setHostEnds(g *topology.Guest, up bool) error {
	for _, ifc := range g.Interfaces {
		l, err := netlink.LinkByName(ifc.HostName)
		if err != nil {
			return fmt.Errorf("guest %s: %s: host end %s: %w", g.Name, ifc.Name, ifc.HostName, err)
		}
		set := netlink.LinkSetDown
		if up {
			set = netlink.LinkSetUp
		}
		if err := set(l); err != nil {
			return fmt.Errorf("guest %s: %s: set %s up=%v: %w", g.Name, ifc.Name, ifc.HostName, up, err)
		}
	}
	return nil
}
