package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// A kind is one sort of object the engine makes and records: a switch's
// bridge, a tunnel, a router (or the host's side of an external switch), an
// ACL table, a guest. Each lives in a file of its own that knows how to
// plan, make, remove and check it; up, down, apply, restore, clean and plan
// go through the one ordered list that kinds returns and name no kind
// themselves. A second network backend is a second provider of network
// kinds.
type kind interface {
	// stage names the kind's stage in up and down ("network", "guests").
	stage() string
	// held lists the keys of the entries the kind owns in a host's record,
	// sorted.
	held(h *HostRecord) []string
	// forget drops the entry key from h.
	forget(h *HostRecord, key string)
	// removal says how down removes the entry key of h.
	removal(env removeEnv, h *HostRecord, key string) removal
	// upPart is what an up over u's state does with the kind; nil when
	// the state has none of it.
	upPart(u *upRun) upPart
	// missing lists what of the entries h holds is not there on host:
	// a host reboot removes namespaces, bridges and links; a bridge made
	// again has lost its ports.
	missing(ctx context.Context, c checkEnv, h *HostRecord) ([]gap, error)
	// diff adds the kind's changes between rec and st to p.
	diff(p *planned, rec *Record, st *topology.State)
	// removeLimit bounds the objects down removes at once; 0 is the
	// engine's Concurrency.
	removeLimit(o *Options) int
}

// The network backends: which provider the network kinds come from,
// chosen for the whole server.
const (
	// BackendBridge is the embedded default: Linux bridges, VXLAN tunnels,
	// routers in namespaces, nftables ACLs.
	BackendBridge = "bridge"
	// BackendOVN writes switches, routers, DHCP, DNS and ACLs to OVN's
	// northbound database; guests attach to the OVS integration bridge.
	BackendOVN = "ovn"
)

// kinds is every kind of the engine's backend in the order up makes them:
// the network first, the guests on it last. Down and apply remove in the
// reverse order.
func (e *Engine) kinds() []kind { return backendKinds(e.opts.Backend) }

// backendKinds is the kinds of backend, the bridge backend's when empty.
func backendKinds(backend string) []kind {
	if backend == BackendOVN {
		return ovnKinds()
	}
	return []kind{bridgeKind{}, tunnelKind{}, routerKind{}, aclKind{}, guestKind{}, namesKind{}}
}

// recordKinds is every kind a record may hold, of any backend, each once:
// whether a record is empty, and what it holds, does not depend on the
// backend the server runs now.
func recordKinds() []kind {
	seen := map[string]bool{}
	var out []kind
	for _, b := range []string{BackendBridge, BackendOVN} {
		for _, k := range backendKinds(b) {
			if n := fmt.Sprintf("%T", k); !seen[n] {
				seen[n] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// upPart is one kind's part of an up: plan records, before anything is
// made, what the items then make; forgetUnstarted drops, after a failed
// stage, what plan recorded but no item began (a failing stage stops
// starting items, and waits for those that began: they correct the record
// themselves).
type upPart interface {
	plan(ctx context.Context) (detail string, err error)
	items() []item
	forgetUnstarted(r *Record)
}

// removal is how down removes one recorded object.
type removal struct {
	// what names the object in the log and in errors: "switch sw0",
	// "router r1".
	what string
	// noun counts it in the stage line: "switch", "external switch".
	noun string
	// run removes it on host and returns how that went for the log
	// ("removed"); the caller forgets the entry when run succeeds.
	run func(ctx context.Context, host Host) (string, error)
}

// removeEnv is what a removal needs besides the record: the deployment,
// the project folder its record was made from, and the action's log.
type removeEnv struct {
	dep     string
	project string
	log     actlog.Log
	// otherHolder names another deployment whose record holds on host
	// what holds reports (a shared provider network's bridge or host
	// side); nil where nothing is removed.
	otherHolder func(ctx context.Context, host string, holds func(*HostRecord) bool) (string, error)
}

// keptShared says whether a shared object stays because another
// deployment still holds it, and how the log should put it.
func (env removeEnv) keptShared(ctx context.Context, host string, holds func(*HostRecord) bool) (string, bool, error) {
	if env.otherHolder == nil {
		return "", false, nil
	}
	other, err := env.otherHolder(ctx, host, holds)
	if err != nil || other == "" {
		return "", false, err
	}
	return "kept (deployment " + other + " uses it too)", true, nil
}

// checkEnv is what a kind's missing check needs: the host, and the
// deployment whose record it checks with its project folder.
type checkEnv struct {
	host    Host
	dep     string
	project string
}

// gap is something of a recorded object that is not there.
type gap struct {
	// kind and name name the object as a plan does.
	kind api.ChangeKind
	name string
	// what says what is missing: "bridge tb1a2b3-sw0", "router r1:
	// namespace …", "guest web: eth0 is not on bridge tb1a2b3-sw0".
	what string
}

// sortedKeys lists the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// objectError names the object an error is about, once: an error that
// already starts with the name is returned as it is, so a message never
// reads "guest web: guest web: …".
func objectError(what string, err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), what+":") {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// countNouns writes counts of nouns in their first-seen order: "1 router,
// 1 external switch".
func countNouns(nouns []string) string {
	n := map[string]int{}
	var order []string
	for _, s := range nouns {
		if n[s] == 0 {
			order = append(order, s)
		}
		n[s]++
	}
	parts := make([]string, len(order))
	for i, s := range order {
		parts[i] = count(n[s], s)
	}
	return strings.Join(parts, ", ")
}
