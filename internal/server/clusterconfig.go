package server

import (
	"context"
	"fmt"
	"reflect"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
)

// SetConfig applies a posted kvm-compose-config.json (POST
// /api/config/cluster): the main's entry (is_main_host) is saved as this
// host's host.json, and a member left out of the list leaves the cluster.
// Members are not added here (a client joins with its token) nor edited (a
// member's host.json lives on that host): either is a 422 naming the entry.
// Everything is checked before anything changes.
func (c *clusterAPI) SetConfig(ctx context.Context, cc api.ClusterConfig) (api.ClusterConfig, error) {
	current := map[string]api.ClusterHost{}
	for _, h := range c.Config().Hosts {
		if !h.IsMainHost {
			current[h.Name] = h
		}
	}
	if len(cc.TestbedHostSSHConfig) > 0 {
		if len(cc.Hosts) > 0 {
			return api.ClusterConfig{}, fmt.Errorf("%w: give hosts or the original's testbed_host_ssh_config, not both", api.ErrInvalidHost)
		}
		var err error
		if cc, err = c.fromOriginal(cc, current); err != nil {
			return api.ClusterConfig{}, err
		}
	}
	var main *api.ClusterHost
	keep := map[string]bool{}
	for i := range cc.Hosts {
		h := cc.Hosts[i]
		at := fmt.Sprintf("hosts[%d] (%s)", i, h.Name)
		if h.IsMainHost {
			if main != nil {
				return api.ClusterConfig{}, fmt.Errorf("%w: %s: a second host with is_main_host true (%s is the first)", api.ErrInvalidHost, at, main.Name)
			}
			main = &cc.Hosts[i]
			continue
		}
		old, ok := current[h.Name]
		switch {
		case !ok:
			return api.ClusterConfig{}, fmt.Errorf("%w: %s is not a member of the cluster: a client joins with testbedos-server client --join TOKEN (testbedos-server join-token prints one)", api.ErrInvalidHost, at)
		case keep[h.Name]:
			return api.ClusterConfig{}, fmt.Errorf("%w: %s is listed twice", api.ErrInvalidHost, at)
		case !reflect.DeepEqual(old.HostConfig, h.HostConfig),
			h.URL != "" && h.URL != old.URL,
			h.Fingerprint != "" && h.Fingerprint != old.Fingerprint:
			return api.ClusterConfig{}, fmt.Errorf("%w: %s differs from the member's own host.json: change it on that host (POST /api/config/host there), it re-joins with it", api.ErrInvalidHost, at)
		}
		keep[h.Name] = true
	}
	if main == nil {
		return api.ClusterConfig{}, fmt.Errorf("%w: hosts: the main host (is_main_host true) is missing", api.ErrInvalidHost)
	}
	if err := main.HostConfig.Validate(); err != nil {
		return api.ClusterConfig{}, err
	}
	if _, err := c.SetHost(ctx, main.HostConfig); err != nil {
		return api.ClusterConfig{}, err
	}
	for name := range current {
		if !keep[name] {
			if err := c.Remove(name, false); err != nil {
				return api.ClusterConfig{}, fmt.Errorf("cluster config: remove member %s: %w", name, err)
			}
		}
	}
	return c.Config(), nil
}

// fromOriginal reads the original's kvm-compose-config.json: hosts by name
// under testbed_host_ssh_config, without cpus or memory_mb. The main's
// entry takes them from this host; a member's entry stands for the member
// as it joined, provided its ip is the member's.
func (c *clusterAPI) fromOriginal(cc api.ClusterConfig, current map[string]api.ClusterHost) (api.ClusterConfig, error) {
	names := make([]string, 0, len(cc.TestbedHostSSHConfig))
	for name := range cc.TestbedHostSSHConfig {
		names = append(names, name)
	}
	sort.Strings(names)
	self := c.Host()
	var out api.ClusterConfig
	for _, name := range names {
		h := cc.TestbedHostSSHConfig[name].Host(name)
		if h.IsMainHost {
			h = h.WithDefaults(api.HostDefaults{CPUs: self.CPUs, MemoryMB: self.MemoryMB})
			out.Hosts = append(out.Hosts, api.ClusterHost{HostConfig: h})
			continue
		}
		old, ok := current[name]
		if ok && old.IP != h.IP {
			return api.ClusterConfig{}, fmt.Errorf("%w: testbed_host_ssh_config.%s: ip %s differs from the member's own host.json (%s): change it on that host, it re-joins with it", api.ErrInvalidHost, name, h.IP, old.IP)
		}
		if ok {
			h = old.HostConfig
		}
		out.Hosts = append(out.Hosts, api.ClusterHost{HostConfig: h})
	}
	return out, nil
}
