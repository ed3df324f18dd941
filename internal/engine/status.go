package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// guestStatusWorkers bounds how many drivers are asked at once.
const guestStatusWorkers = 8

// Guests lists the guests of d's state with their status: running when
// their host's driver says the guest is there, stopped when the record
// holds it but the driver does not see it (or its host does not answer),
// absent when nothing of it is recorded. A deployment without state wraps
// ErrNotFound. Resources are left nil: the monitor fills them in.
func (e *Engine) Guests(ctx context.Context, d api.Deployment) ([]api.Guest, error) {
	st, err := topology.ReadState(e.statePath(d.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, inCategory(ErrNotFound, fmt.Errorf("deployment %s has no state yet: run generate-artefacts first", d.Name))
	}
	if err != nil {
		return nil, fmt.Errorf("read artefacts: %w", err)
	}
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	out := make([]api.Guest, len(st.Guests))
	sem := make(chan struct{}, guestStatusWorkers)
	var wg sync.WaitGroup
	for i := range st.Guests {
		g := &st.Guests[i]
		out[i] = api.Guest{Name: g.Name, Kind: g.Kind, Host: g.Host, Status: api.GuestAbsent, Interfaces: guestInterfaces(g)}
		var recorded bool
		if h := rec.Hosts[g.Host]; h != nil {
			var gr GuestRecord
			gr, recorded = h.Guests[g.Name]
			withLeases(out[i].Interfaces, gr.Leases)
			withImpairments(out[i].Interfaces, gr.Impairments)
		}
		if !recorded {
			continue
		}
		out[i].Status = api.GuestStopped
		if rec.Hosts[g.Host].Guests[g.Name].Stopped {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if e.guestRunning(ctx, d, g) {
				out[i].Status = api.GuestRunning
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// guestRunning asks the guest's host whether it is there.
func (e *Engine) guestRunning(ctx context.Context, d api.Deployment, g *topology.Guest) bool {
	host, err := e.opts.Hosts.Host(g.Host)
	if err != nil {
		return false
	}
	drv, err := host.Driver(g.Kind)
	if err != nil {
		return false
	}
	ok, err := drv.Exists(ctx, guestDeployment(d.Name, host, d.ProjectLocation), g)
	if err != nil {
		e.opts.Logger.Debug("guest status", "deployment", d.Name, "guest", g.Name, "err", err)
	}
	return ok && err == nil
}

func guestInterfaces(g *topology.Guest) []api.GuestInterface {
	out := make([]api.GuestInterface, 0, len(g.Interfaces))
	for _, ifc := range g.Interfaces {
		out = append(out, api.GuestInterface{Name: ifc.Name, Switch: ifc.Switch, IP: ifc.Address, MAC: ifc.MAC})
	}
	return out
}

// withLeases fills the recorded DHCP leases (interface name → CIDR) into
// the interfaces of ip: dynamic.
func withLeases(ifcs []api.GuestInterface, leases map[string]string) {
	for i := range ifcs {
		if a, ok := leases[ifcs[i].Name]; ok && a != "" {
			ifcs[i].IP, ifcs[i].Leased = a, true
		}
	}
}

// withImpairments fills the run-time impairments recorded (interface name
// → setting) into the interfaces.
func withImpairments(ifcs []api.GuestInterface, imps map[string]api.Impairment) {
	for i := range ifcs {
		if imp, ok := imps[ifcs[i].Name]; ok {
			ifcs[i].Impairment = &imp
		}
	}
}
