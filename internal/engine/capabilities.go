package engine

import (
	"fmt"

	"github.com/testbedos/testbedos/internal/topology"
)

// checkCapabilities refuses, before an up or apply is recorded, routers,
// external switches and ACLs placed on a host whose network cannot have
// them (ErrNoRouters, ErrNoACLs: 422). A host the cluster does not know
// is left to the action, which says so.
func (e *Engine) checkCapabilities(st *topology.State) error {
	hostOf := func(name string) Host {
		h, err := e.opts.Hosts.Host(name)
		if err != nil {
			return nil
		}
		return h
	}
	if e.opts.Backend == BackendOVN {
		if err := checkOVNHosts(st, hostOf); err != nil {
			return err
		}
	}
	for _, r := range st.Routers {
		if h := hostOf(r.Host); h != nil {
			if _, err := RoutersOf(h); err != nil {
				return fmt.Errorf("router %s: %w", r.Name, err)
			}
		}
	}
	for _, sw := range st.Switches {
		if sw.External == nil {
			continue
		}
		if h := hostOf(sw.External.Host); h != nil {
			if _, err := RoutersOf(h); err != nil {
				return fmt.Errorf("switch %s is external: %w", sw.Name, err)
			}
		}
	}
	for host := range aclTableSpecs(st) {
		if h := hostOf(host); h != nil {
			if _, err := ACLsOf(h); err != nil {
				return fmt.Errorf("network.acl: %w", err)
			}
		}
	}
	return nil
}
