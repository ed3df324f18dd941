package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// TunnelChecker is what a host's Network implements when it can tell
// whether a tunnel exists; Missing checks tunnels only on such hosts.
type TunnelChecker interface {
	HasTunnel(ctx context.Context, name string) (bool, error)
}

// RouterChecker is what a host's Network implements when it can tell what
// of a router or an external side is there; Missing checks routers only on
// such hosts.
type RouterChecker interface {
	// RouterMissing lists what of r is not there (its namespace, a port,
	// a DHCP server); empty when it is whole.
	RouterMissing(ctx context.Context, r topology.Router) ([]string, error)
	HasExternal(ctx context.Context, sw topology.Switch) (bool, error)
}

// ACLChecker is what a host's Network implements when it can tell whether
// an ACL table exists.
type ACLChecker interface {
	HasACLTable(ctx context.Context, name string) (bool, error)
}

// Missing lists what deployment d's record holds that does not exist on
// its hosts (a host reboot removes namespaces, bridges, tunnels and running
// domains, router namespaces and nftables tables; a restart, the DHCP
// servers), as "namespace …", "bridge …", "tunnel …", "router …: …",
// "switch … (external)", "acl table …", sorted. A host that
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
		more, err := missingNetwork(ctx, net, hr, onHostName(len(rec.Hosts), name))
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		missing = append(missing, more...)
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

// missingNetwork lists the routers, external sides and ACL tables of hr
// that are not there, on hosts whose network can tell.
func missingNetwork(ctx context.Context, net Network, hr *HostRecord, on string) ([]string, error) {
	var missing []string
	if rc, ok := net.(RouterChecker); ok {
		for _, key := range sortedKeys(hr.Routers) {
			rr := hr.Routers[key]
			switch {
			case rr.Router != nil:
				gone, err := rc.RouterMissing(ctx, *rr.Router)
				if err != nil {
					return nil, fmt.Errorf("router %s: %w", rr.Router.Name, err)
				}
				for _, g := range gone {
					missing = append(missing, "router "+rr.Router.Name+": "+g+on)
				}
			case rr.External != nil:
				ok, err := rc.HasExternal(ctx, *rr.External)
				if err != nil {
					return nil, fmt.Errorf("switch %s: %w", rr.External.Name, err)
				}
				if !ok {
					missing = append(missing, "switch "+rr.External.Name+" (external)"+on)
				}
			}
		}
	}
	if ac, ok := net.(ACLChecker); ok {
		for _, name := range sortedKeys(hr.ACLTables) {
			ok, err := ac.HasACLTable(ctx, name)
			if err != nil {
				return nil, fmt.Errorf("acl table %s: %w", name, err)
			}
			if !ok {
				missing = append(missing, "acl table "+name+on)
			}
		}
	}
	return missing, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
