package netns

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/topology"
)

// stateFor turns a benchmark plan into the resolved state the engine would
// hand the driver, so both bring up exactly the same guests.
func stateFor(p benchbase.Plan) *topology.State {
	st := &topology.State{
		Version:    topology.StateVersion,
		Deployment: "test-" + p.Prefix,
		Prefix:     p.Prefix,
		Hosts:      []topology.Host{{Name: "local", Main: true}},
	}
	if len(p.Bridges) == 0 {
		st.Switches = []topology.Switch{{Name: "lan", Subnet: "10.123.0.0/16", Bridge: p.Bridge}}
	}
	for k, br := range p.Bridges {
		st.Switches = append(st.Switches, topology.Switch{Name: fmt.Sprintf("lan%d", k), Subnet: "10.123.0.0/16", Bridge: br})
	}
	for i := range p.N {
		st.Guests = append(st.Guests, topology.Guest{
			Name: fmt.Sprintf("g%d", i),
			Kind: topology.KindNetns,
			Host: "local",
			Interfaces: []topology.Interface{{
				Switch:   st.Switches[i%len(st.Switches)].Name,
				Bridge:   p.BridgeOf(i),
				Name:     benchbase.GuestIface,
				HostName: p.HostVeth(i),
				Address:  p.Address(i),
				MAC:      p.MAC(i),
			}},
			Netns: &topology.NetnsGuest{Namespace: p.Namespace(i)},
		})
	}
	return st
}

// forEach runs fn for 0..n-1 on at most workers goroutines, like the
// engine's stages, and joins the errors.
func forEach(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	sem := make(chan struct{}, workers)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// created drops Create's report for callers that want only the error.
func created(_ bool, err error) error { return err }
