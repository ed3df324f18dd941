package engine

import (
	"context"
	"errors"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
)

// Missing lists what deployment d's record holds that is not there, or not
// whole, on its hosts — a host reboot removes namespaces, bridges, tunnels,
// running domains, router namespaces and nftables tables; a restart, the
// DHCP servers; a bridge deleted and made again has lost its ports — as
// "namespace …", "bridge …", "tunnel …", "router …: …", "switch …
// (external)", "acl table …", "guest …: eth0 is not on bridge …", sorted.
// A host that cannot be reached is skipped: nothing on it can be told
// missing. Restore after a restart runs up when the list is not empty; up
// makes or repairs every recorded object that is missing or broken and
// keeps the others.
func (e *Engine) Missing(ctx context.Context, d api.Deployment) ([]string, error) {
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	var missing []string
	err = e.eachGap(ctx, d, &rec, func(host string, gaps []gap) {
		for _, g := range gaps {
			missing = append(missing, g.what+onHostName(len(rec.Hosts), host))
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(missing)
	return missing, nil
}

// eachGap checks every host of rec, kind by kind, and calls fn with what
// is missing there. An unreachable host, or one the cluster no longer has,
// is skipped.
func (e *Engine) eachGap(ctx context.Context, d api.Deployment, rec *Record, fn func(host string, gaps []gap)) error {
	project := rec.Project
	if project == "" {
		project = d.ProjectLocation
	}
	for _, name := range rec.hostNames() {
		host, err := e.opts.Hosts.Host(name)
		if err != nil {
			e.opts.Logger.Warn("host of the record is not in the cluster; not checked", "deployment", d.Name, "host", name, "err", err)
			continue
		}
		env := checkEnv{host: host, dep: d.Name, project: project}
		var gaps []gap
		for _, k := range e.kinds() {
			more, err := k.missing(ctx, env, rec.Hosts[name])
			if errors.Is(err, ErrHostUnreachable) {
				gaps = nil
				break
			}
			if err != nil {
				return objectError("host "+name, err)
			}
			gaps = append(gaps, more...)
		}
		fn(name, gaps)
	}
	return nil
}
