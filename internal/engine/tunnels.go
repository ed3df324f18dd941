package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/testbedos/testbedos/internal/topology"
)

// A switch whose guests are placed on more than one host spans hosts: each
// of its hosts has the switch's bridge plus one VXLAN link on it, with an
// FDB entry for every other host of the switch (unicast, no multicast). The
// switch's VNI is derived from its name and probed on until no other
// deployment's record holds it; it is recorded, so later ups reuse it.

// placedTunnel is the VXLAN link of a spanning switch on one host.
type placedTunnel struct {
	sw   topology.Switch
	host Host
	tun  Tunnels
	spec TunnelSpec
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

// planTunnels decides every spanning switch's VNI and records, before
// anything is made, the tunnels this up will make on each host.
func (u *upRun) planTunnels(ctx context.Context) (string, error) {
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
			u.tunnels = append(u.tunnels, placedTunnel{sw: sw, host: host, tun: tun, spec: TunnelSpec{
				Name:   topology.TunnelName(u.d.Name, sw.Name),
				VNI:    vnis[sw.Name],
				Local:  local,
				Peers:  peers,
				Bridge: sw.Bridge,
				MTU:    topology.TunnelMTU,
			}})
		}
	}
	u.tunnelOwned = make([]bool, len(u.tunnels))
	u.tunnelRecorded = make([]bool, len(u.tunnels))
	u.tunnelStarted = make([]bool, len(u.tunnels))
	u.led.edit(func(r *Record) {
		for i, pt := range u.tunnels {
			h := r.host(pt.host.Name())
			prev, ok := h.Tunnels[pt.spec.Name]
			u.tunnelRecorded[i], u.tunnelOwned[i] = ok, ok && prev.Made
			// Recorded as made before it is (unless an earlier up found
			// it): down then removes it whatever happens next. The name
			// carries the deployment's prefix, so it is ours even if it
			// turns out to be there already.
			h.Tunnels[pt.spec.Name] = TunnelRecord{Switch: pt.sw.Name, VNI: pt.spec.VNI, Bridge: pt.spec.Bridge, Peers: pt.spec.Peers, Made: !ok || prev.Made}
		}
	})
	return fmt.Sprintf("%s over %s", count(len(span), "switch"), count(len(u.tunnels), "tunnel")), u.led.save(ctx)
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

func (u *upRun) tunnelItems() []item {
	items := make([]item, len(u.tunnels))
	for i, pt := range u.tunnels {
		items[i] = func(ctx context.Context) error {
			host, name := pt.host.Name(), pt.spec.Name
			u.tunnelStarted[i] = true
			created, err := pt.tun.EnsureTunnel(ctx, pt.spec)
			if err != nil {
				if !u.tunnelRecorded[i] {
					// The tunnel was missing and may exist now (a remote
					// host can finish what the main gave up waiting
					// for): undo it by name, as if made.
					u.made.add(func(ctx context.Context) error {
						if err := pt.tun.DeleteTunnel(ctx, name); err != nil {
							return fmt.Errorf("switch %s: tunnel %s: %w", pt.sw.Name, name, err)
						}
						u.led.edit(func(r *Record) { delete(r.host(host).Tunnels, name) })
						return nil
					})
				}
				return fmt.Errorf("switch %s: tunnel %s: %w", pt.sw.Name, name, err)
			}
			switch {
			case created:
				u.made.add(func(ctx context.Context) error {
					if err := pt.tun.DeleteTunnel(ctx, name); err != nil {
						return fmt.Errorf("switch %s: tunnel %s: %w", pt.sw.Name, name, err)
					}
					u.led.edit(func(r *Record) { delete(r.host(host).Tunnels, name) })
					return nil
				})
			case !u.tunnelOwned[i]:
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
			u.log.Printf("    switch %s: tunnel %s VNI %d %s on %s to %v", pt.sw.Name, name, pt.spec.VNI,
				ifThen(created, "created", "already there"), host, pt.spec.Peers)
			return nil
		}
	}
	return items
}

// dropUnstartedTunnels forgets, after a failed up, the tunnels this run
// recorded whose item never started: nothing of them exists. (Started
// items correct the record themselves, and the stage waited for them.)
func (u *upRun) dropUnstartedTunnels(r *Record) {
	for i, pt := range u.tunnels {
		if i < len(u.tunnelStarted) && !u.tunnelStarted[i] && !u.tunnelRecorded[i] {
			delete(r.host(pt.host.Name()).Tunnels, pt.spec.Name)
		}
	}
}

// recordedTunnel is a tunnel of the record, for down.
type recordedTunnel struct {
	host, name string
	rec        TunnelRecord
}

func (dr *downRun) planTunnels(ctx context.Context) (string, error) {
	dr.led.view(func(r *Record) {
		for _, h := range dr.hostsOf(r) {
			for name, t := range r.Hosts[h].Tunnels {
				if !dr.picked(pickTunnels, h, name) {
					continue
				}
				dr.tunnels = append(dr.tunnels, recordedTunnel{host: h, name: name, rec: t})
			}
		}
	})
	sort.Slice(dr.tunnels, func(i, j int) bool {
		a, b := dr.tunnels[i], dr.tunnels[j]
		return a.host < b.host || a.host == b.host && a.name < b.name
	})
	return count(len(dr.tunnels), "tunnel"), nil
}

func (dr *downRun) tunnelItems() []item {
	items := make([]item, len(dr.tunnels))
	for i, t := range dr.tunnels {
		items[i] = func(ctx context.Context) error {
			if t.rec.Made {
				host, err := dr.e.opts.Hosts.Host(t.host)
				if err != nil {
					return dr.offline(t.host, fmt.Errorf("switch %s: tunnel %s: %w", t.rec.Switch, t.name, err))
				}
				tun, err := TunnelsOf(host)
				if err != nil {
					return fmt.Errorf("switch %s: tunnel %s: %w", t.rec.Switch, t.name, err)
				}
				if err := tun.DeleteTunnel(ctx, t.name); err != nil {
					return dr.offline(t.host, fmt.Errorf("switch %s: tunnel %s: %w", t.rec.Switch, t.name, err))
				}
			}
			dr.led.edit(func(r *Record) { delete(r.host(t.host).Tunnels, t.name) })
			dr.log.Printf("    switch %s: tunnel %s on %s %s", t.rec.Switch, t.name, t.host, ifThen(t.rec.Made, "removed", "kept (it was there before)"))
			return nil
		}
	}
	return items
}

// tunnelStage is up's stage that joins spanning switches across hosts;
// only deployments with such a switch have it.
func (u *upRun) tunnelStage() []stage {
	if len(spanningSwitches(u.st)) == 0 {
		return nil
	}
	return []stage{{name: "tunnels", prepare: u.planTunnels, items: u.tunnelItems, done: u.led.save}}
}

// tunnelStage is down's stage that removes the recorded tunnels, before
// the bridges they are on.
func (dr *downRun) tunnelStage() []stage {
	var n int
	dr.led.view(func(r *Record) {
		for _, h := range dr.hostsOf(r) {
			n += len(r.Hosts[h].Tunnels)
		}
	})
	if n == 0 {
		return nil
	}
	return []stage{{name: "tunnels", prepare: dr.planTunnels, items: dr.tunnelItems, collect: true, done: dr.led.save}}
}
