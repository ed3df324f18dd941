package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// A switch whose guests are placed on more than one host spans hosts: each
// of its hosts has the switch's bridge plus one VXLAN link on it, with an
// FDB entry for every other host of the switch (unicast, no multicast). The
// switch's VNI is derived from its name and probed on until no other
// deployment's record holds it; it is recorded, so later ups reuse it.

// placedTunnel is the VXLAN link of a spanning switch on one host, and
// what this run knows of it.
type placedTunnel struct {
	sw   topology.Switch
	host Host
	tun  Tunnels
	spec TunnelSpec
	// recorded: in the record before this run; owned: an earlier up made
	// it; started: its item ran.
	recorded, owned, started bool
}

// spanningSwitches names the switches of st whose guests are on more than
// one host, from the guests' placement (not from the state's Switch.Hosts,
// which a state of an older generate lacks).
func spanningSwitches(st *topology.State) map[string][]string {
	on := map[string]map[string]bool{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			if on[ifc.Switch] == nil {
				on[ifc.Switch] = map[string]bool{}
			}
			on[ifc.Switch][g.Host] = true
		}
	}
	out := map[string][]string{}
	for sw, hosts := range on {
		if len(hosts) > 1 {
			var names []string
			for h := range hosts {
				names = append(names, h)
			}
			sort.Strings(names)
			out[sw] = names
		}
	}
	return out
}

// hostIPs maps host names to their addresses: the cluster's current list
// wins over the one the state was generated with.
func (e *Engine) hostIPs(st *topology.State) map[string]string {
	ips := map[string]string{}
	for _, h := range st.Hosts {
		if h.IP != "" {
			ips[h.Name] = h.IP
		}
	}
	for _, h := range e.opts.Hosts.List() {
		if h.IP != "" {
			ips[h.Name] = h.IP
		}
	}
	return ips
}

// allocateVNIs gives each spanning switch its VNI: the one the record of
// this deployment already holds, or the first from topology.VNI on that no
// other deployment's record holds.
func (e *Engine) allocateVNIs(ctx context.Context, self string, led *ledger, switches []topology.Switch, span map[string][]string) (map[string]int, error) {
	out := map[string]int{}
	taken := map[int]string{}
	led.view(func(r *Record) {
		for _, h := range r.Hosts {
			for _, t := range h.Tunnels {
				out[t.Switch] = t.VNI
				taken[t.VNI] = self
			}
		}
	})
	names, err := e.opts.Records.DeployedNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the records of deployments (for a unique VNI): %w", err)
	}
	for _, name := range names {
		if name == self {
			continue
		}
		data, err := e.opts.Records.Deployed(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read the record of deployment %s (for a unique VNI): %w", name, err)
		}
		var rec Record
		if err := json.Unmarshal(data, &rec); err != nil {
			// Its own up or down reports the damage; here it only
			// cannot reserve VNIs.
			e.opts.Logger.Warn("record of a deployment is damaged; its VNIs are not reserved", "deployment", name, "err", err)
			continue
		}
		for _, h := range rec.Hosts {
			for _, t := range h.Tunnels {
				taken[t.VNI] = name
			}
		}
	}
	// A VNI this deployment holds that another one holds too (two records
	// written by daemons that did not see each other) stays: changing it
	// under running guests would cut the switch.
	for _, sw := range switches {
		if _, spans := span[sw.Name]; !spans {
			continue
		}
		if _, ok := out[sw.Name]; ok {
			continue
		}
		v := topology.VNI(self, sw.Name)
		for tries := 0; taken[v] != ""; tries++ {
			if tries > topology.MaxVNI {
				return nil, errors.New("no free VNI left in the cluster")
			}
			v = v%topology.MaxVNI + 1
		}
		out[sw.Name] = v
		taken[v] = self
	}
	return out, nil
}

func (tunnelKind) upPart(u *upRun) upPart {
	if len(spanningSwitches(u.st)) == 0 {
		return nil
	}
	return &tunnelUp{u: u}
}

// tunnelUp makes the tunnels of one up.
type tunnelUp struct {
	u       *upRun
	tunnels []*placedTunnel
}

// plan decides every spanning switch's VNI and records, before anything
// is made, the tunnels this up will make on each host.
func (t *tunnelUp) plan(ctx context.Context) (string, error) {
	u := t.u
	span := spanningSwitches(u.st)
	ips := u.e.hostIPs(u.st)
	hostOf := map[string]Host{}
	for _, b := range u.bridges {
		hostOf[b.host.Name()] = b.host
	}
	// One daemon allocates VNIs for one deployment at a time, so two ups
	// never both take a free one.
	u.e.vniMu.Lock()
	defer u.e.vniMu.Unlock()
	vnis, err := u.e.allocateVNIs(ctx, u.d.Name, u.led, u.st.Switches, span)
	if err != nil {
		return "", err
	}
	for _, sw := range u.st.Switches {
		hosts := span[sw.Name]
		for _, h := range hosts {
			host := hostOf[h]
			if host == nil {
				return "", fmt.Errorf("switch %s: host %s has no bridge of it", sw.Name, h)
			}
			tun, err := TunnelsOf(host)
			if err != nil {
				return "", fmt.Errorf("switch %s spans hosts %v: %w", sw.Name, hosts, err)
			}
			local := ips[h]
			if local == "" {
				return "", fmt.Errorf("switch %s spans hosts %v, but host %s has no ip (host.json) to run its tunnel from", sw.Name, hosts, h)
			}
			var peers []string
			for _, other := range hosts {
				if other == h {
					continue
				}
				if ips[other] == "" {
					return "", fmt.Errorf("switch %s spans hosts %v, but host %s has no ip (host.json) to run its tunnel to", sw.Name, hosts, other)
				}
				peers = append(peers, ips[other])
			}
			t.tunnels = append(t.tunnels, &placedTunnel{sw: sw, host: host, tun: tun, spec: TunnelSpec{
				Name:   topology.TunnelName(u.d.Name, sw.Name),
				VNI:    vnis[sw.Name],
				Local:  local,
				Peers:  peers,
				Bridge: sw.Bridge,
				MTU:    topology.TunnelMTU,
			}})
		}
	}
	u.led.edit(func(r *Record) {
		for _, pt := range t.tunnels {
			h := r.host(pt.host.Name())
			prev, ok := h.Tunnels[pt.spec.Name]
			pt.recorded, pt.owned = ok, ok && prev.Made
			// Recorded as made before it is (unless an earlier up found
			// it): down then removes it whatever happens next. The name
			// carries the deployment's prefix, so it is ours even if it
			// turns out to be there already.
			h.Tunnels[pt.spec.Name] = TunnelRecord{Switch: pt.sw.Name, VNI: pt.spec.VNI, Bridge: pt.spec.Bridge, Peers: pt.spec.Peers, Made: !ok || prev.Made}
		}
	})
	return fmt.Sprintf("%s over %s", count(len(span), "switch"), count(len(t.tunnels), "tunnel")), u.led.save(ctx)
}

func (t *tunnelUp) items() []item {
	u := t.u
	items := make([]item, len(t.tunnels))
	for i, pt := range t.tunnels {
		items[i] = func(ctx context.Context) error {
			host, name := pt.host.Name(), pt.spec.Name
			what := fmt.Sprintf("switch %s: tunnel %s", pt.sw.Name, name)
			pt.started = true
			undo := func(ctx context.Context) error {
				if err := pt.tun.DeleteTunnel(ctx, name); err != nil {
					return objectError(what, err)
				}
				u.led.edit(func(r *Record) { delete(r.host(host).Tunnels, name) })
				return nil
			}
			created, err := pt.tun.EnsureTunnel(ctx, pt.spec)
			if err != nil {
				if !pt.recorded {
					// The tunnel was missing and may exist now (a remote
					// host can finish what the main gave up waiting
					// for): undo it by name, as if made.
					u.made.add(undo)
				}
				return objectError(what, err)
			}
			switch {
			case created:
				u.made.add(undo)
			case !pt.owned:
				// Found, not made by an earlier up: used, never deleted.
				u.led.edit(func(r *Record) {
					rec := r.host(host).Tunnels[name]
					rec.Made = false
					r.host(host).Tunnels[name] = rec
				})
				u.made.add(func(ctx context.Context) error {
					u.led.edit(func(r *Record) { delete(r.host(host).Tunnels, name) })
					return nil
				})
			}
			u.log.Printf("    %s VNI %d %s on %s to %v", what, pt.spec.VNI, ifThen(created, "created", "already there"), host, pt.spec.Peers)
			return nil
		}
	}
	return items
}

func (t *tunnelUp) forgetUnstarted(r *Record) {
	for _, pt := range t.tunnels {
		if !pt.started && !pt.recorded {
			delete(r.host(pt.host.Name()).Tunnels, pt.spec.Name)
		}
	}
}

// tunnelKind is the VXLAN links of switches spanning hosts.
type tunnelKind struct{}

var _ kind = tunnelKind{}

func (tunnelKind) stage() string { return "tunnels" }

func (tunnelKind) held(h *HostRecord) []string { return sortedKeys(h.Tunnels) }

func (tunnelKind) forget(h *HostRecord, key string) { delete(h.Tunnels, key) }

func (tunnelKind) removeLimit(*Options) int { return 0 }

func (tunnelKind) removal(_ removeEnv, h *HostRecord, name string) removal {
	t := h.Tunnels[name]
	return removal{
		what: fmt.Sprintf("switch %s: tunnel %s", t.Switch, name),
		noun: "tunnel",
		run: func(ctx context.Context, host Host) (string, error) {
			if !t.Made {
				return "kept (it was there before)", nil
			}
			tun, err := TunnelsOf(host)
			if err != nil {
				return "", err
			}
			return "removed", tun.DeleteTunnel(ctx, name)
		},
	}
}

func (tunnelKind) missing(ctx context.Context, c checkEnv, h *HostRecord) ([]gap, error) {
	if len(h.Tunnels) == 0 {
		return nil, nil
	}
	tun, err := TunnelsOf(c.host)
	if err != nil {
		return nil, err
	}
	var out []gap
	for _, name := range sortedKeys(h.Tunnels) {
		ok, err := tun.HasTunnel(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("tunnel %s: %w", name, err)
		}
		if !ok {
			out = append(out, gap{kind: api.KindTunnel, name: name, what: "tunnel " + name})
		}
	}
	return out, nil
}

// diff re-makes a recorded tunnel whose peers changed, removes one no
// longer wanted and adds the wanted ones the record lacks.
func (tunnelKind) diff(p *planned, rec *Record, st *topology.State) {
	want := map[hostKey][]string{}
	for sw, hosts := range spanningSwitches(st) {
		for _, h := range hosts {
			var peers []string
			for _, other := range hosts {
				if other != h {
					peers = append(peers, p.ips[other])
				}
			}
			want[hostKey{h, topology.TunnelName(st.Deployment, sw)}] = peers
		}
	}
	for _, h := range rec.hostNames() {
		for _, link := range sortedKeys(rec.Hosts[h].Tunnels) {
			t := rec.Hosts[h].Tunnels[link]
			k := hostKey{h, link}
			peers, ok := want[k]
			switch {
			case !ok:
				p.remove(tunnelKind{}, k)
				p.change(api.KindTunnel, k, api.OpRemove, "")
			case !sameSet(peers, t.Peers):
				p.remove(tunnelKind{}, k)
				p.change(api.KindTunnel, k, api.OpRemake, fmt.Sprintf("peers %v → %v", t.Peers, peers))
			default:
				p.keep(api.KindTunnel, k)
			}
		}
	}
	for k := range want {
		if hr := rec.Hosts[k.host]; hr != nil {
			if _, ok := hr.Tunnels[k.name]; ok {
				continue
			}
		}
		p.change(api.KindTunnel, k, api.OpAdd, "")
	}
}
