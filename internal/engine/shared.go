package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/testbedos/testbedos/internal/topology"
)

// A provider network (topology/provider.go) is shared by every deployment
// whose localnet ports name it: one bridge and one host side (address and
// masquerade table) on the main host. Each such deployment records them;
// the one whose down finds no other record holding them removes them, so
// the first down does not cut the others. Two different external switches
// on one host whose subnets overlap would fight over routes and addresses:
// up refuses the second, naming the first's deployment.

// otherRecords reads the record of every deployment but self. A damaged
// record is skipped (its own up or down reports it).
func (e *Engine) otherRecords(ctx context.Context, self string) (map[string]*Record, error) {
	names, err := e.opts.Records.DeployedNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the records of deployments: %w", err)
	}
	out := map[string]*Record{}
	for _, name := range names {
		if name == self {
			continue
		}
		data, err := e.opts.Records.Deployed(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read the record of deployment %s: %w", name, err)
		}
		var rec Record
		if err := json.Unmarshal(data, &rec); err != nil {
			e.opts.Logger.Warn("record of a deployment is damaged; skipped when looking for shared objects", "deployment", name, "err", err)
			continue
		}
		out[name] = &rec
	}
	return out, nil
}

// sharedHolder names another deployment whose record holds, on host, what
// holds reports; "" when none does.
func (e *Engine) sharedHolder(ctx context.Context, self, host string, holds func(*HostRecord) bool) (string, error) {
	others, err := e.otherRecords(ctx, self)
	if err != nil {
		return "", err
	}
	for _, name := range sortedKeys(others) {
		if h := others[name].Hosts[host]; h != nil && holds(h) {
			return name, nil
		}
	}
	return "", nil
}

// checkExternalOverlap refuses an external switch of st whose subnet
// overlaps that of another deployment's external switch on the same host,
// unless both are the same provider network.
func (e *Engine) checkExternalOverlap(ctx context.Context, self string, st *topology.State) error {
	if !hasExternal(st) {
		return nil
	}
	others, err := e.otherRecords(ctx, self)
	if err != nil {
		return err
	}
	for _, sw := range st.Switches {
		x := sw.External
		if x == nil {
			continue
		}
		mine, err := netip.ParsePrefix(sw.Subnet)
		if err != nil {
			continue
		}
		for _, name := range sortedKeys(others) {
			h := others[name].Hosts[x.Host]
			if h == nil {
				continue
			}
			for _, key := range sortedKeys(h.Routers) {
				theirs := h.Routers[key].External
				if theirs == nil || theirs.External == nil {
					continue
				}
				if x.Provider != "" && theirs.External.Provider == x.Provider {
					continue
				}
				p, err := netip.ParsePrefix(theirs.Subnet)
				if err == nil && p.Overlaps(mine) {
					return fmt.Errorf("%w: external switch %s (%s) overlaps external switch %s (%s) of deployment %s on host %s: give one of them another subnet, or bring %s down first",
						ErrConflict, sw.Name, mine, theirs.Name, p, name, x.Host, name)
				}
			}
		}
	}
	return nil
}

// sharedSwitch reports whether an external switch is a provider network's.
func sharedSwitch(sw *topology.Switch) bool {
	return sw != nil && sw.External != nil && sw.External.Provider != ""
}
