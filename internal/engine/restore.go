package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
)

// TunnelChecker is what a host's Network implements when it can tell
// whether a tunnel exists; Missing checks tunnels only on such hosts.
type TunnelChecker interface {
	HasTunnel(ctx context.Context, name string) (bool, error)
}

// Missing lists what deployment d's record holds that does not exist on
// its hosts (a host reboot removes namespaces, bridges, tunnels and running
// domains), as "namespace …", "bridge …", "tunnel …", sorted. A host that
// cannot be reached is skipped: nothing on it can be told missing. Restore
// after a restart runs up when the list is not empty; up makes every
// recorded object that is missing and keeps the others.
func (e *Engine) Missing(ctx context.Context, d api.Deployment) ([]string, error) {
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	project := rec.Project
	if project == "" {
		project = d.ProjectLocation
	}
	var missing []string
	for _, name := range rec.hostNames() {
		hr := rec.Hosts[name]
		host, err := e.opts.Hosts.Host(name)
		if err != nil {
			e.opts.Logger.Warn("restore: host of the record is not in the cluster; not checked", "deployment", d.Name, "host", name, "err", err)
			continue
		}
		net := host.Network()
		for bridge := range hr.Bridges {
			ok, err := net.HasBridge(ctx, bridge)
			if err != nil {
				if errors.Is(err, ErrHostUnreachable) {
					break
				}
				return nil, fmt.Errorf("host %s: bridge %s: %w", name, bridge, err)
			}
			if !ok {
				missing = append(missing, "bridge "+bridge+onHostName(len(rec.Hosts), name))
			}
		}
		if tc, ok := net.(TunnelChecker); ok {
			for link := range hr.Tunnels {
				ok, err := tc.HasTunnel(ctx, link)
				if err != nil {
					return nil, fmt.Errorf("host %s: tunnel %s: %w", name, link, err)
				}
				if !ok {
					missing = append(missing, "tunnel "+link+onHostName(len(rec.Hosts), name))
				}
			}
		}
		for _, gr := range hr.Guests {
			g := gr.Guest
			drv, err := host.Driver(g.Kind)
			if err != nil {
				return nil, fmt.Errorf("guest %s: %w", g.Name, err)
			}
			ok, err := drv.Exists(ctx, guest.Deployment{Name: d.Name, Files: host.Files(project)}, &g)
			if errors.Is(err, ErrHostUnreachable) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("guest %s: %w", g.Name, err)
			}
			if !ok {
				missing = append(missing, guestObject(&g)+onHostName(len(rec.Hosts), name))
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}

func onHostName(hosts int, name string) string {
	if hosts <= 1 {
		return ""
	}
	return " on " + name
}
