package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// A switch is a bridge on every host that carries one of its guests,
// routers or external sides, with the host firewall rules that let the
// bridge's ports talk. Its name carries the deployment's prefix; a bridge of
// that name that the record does not hold is foreign (another server's, or
// made by hand), and up refuses to use it.

// bridgeKind is the switches' bridges.
type bridgeKind struct{}

var _ kind = bridgeKind{}

func (bridgeKind) stage() string { return "network" }

func (bridgeKind) held(h *HostRecord) []string { return sortedKeys(h.Bridges) }

func (bridgeKind) forget(h *HostRecord, key string) { delete(h.Bridges, key) }

func (bridgeKind) removeLimit(*Options) int { return 0 }

func (bridgeKind) removal(env removeEnv, h *HostRecord, name string) removal {
	br := h.Bridges[name]
	return removal{
		what: "switch " + br.Switch,
		noun: "switch",
		run: func(ctx context.Context, host Host) (string, error) {
			net := host.Network()
			if br.Shared {
				// A provider network's bridge: the last deployment on it
				// removes it, whoever made it.
				how, kept, err := env.keptShared(ctx, host.Name(), func(h *HostRecord) bool { _, ok := h.Bridges[name]; return ok })
				if err != nil || kept {
					return "bridge " + name + " " + how, err
				}
				br.Made = true
			}
			var errs []error
			if br.Firewall {
				errs = append(errs, net.RemoveBridge(ctx, name))
			}
			if br.Made {
				errs = append(errs, net.DeleteBridge(ctx, name))
			}
			return "bridge " + name + " " + ifThen(br.Made, "removed", "kept (it was there before), its firewall rules removed"), errors.Join(errs...)
		},
	}
}

func (bridgeKind) missing(ctx context.Context, c checkEnv, h *HostRecord) ([]gap, error) {
	var out []gap
	for _, name := range sortedKeys(h.Bridges) {
		ok, err := c.host.Network().HasBridge(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
		if !ok {
			out = append(out, gap{kind: api.KindSwitch, name: h.Bridges[name].Switch, what: "bridge " + name})
		}
	}
	return out, nil
}

// diff keeps or removes each recorded bridge (a bridge is plain layer 2:
// never re-made) and adds the wanted ones the record lacks.
func (bridgeKind) diff(p *planned, rec *Record, st *topology.State) {
	wanted := wantedBridges(st)
	for _, h := range rec.hostNames() {
		for _, bridge := range sortedKeys(rec.Hosts[h].Bridges) {
			br := rec.Hosts[h].Bridges[bridge]
			if _, ok := wanted[hostKey{h, bridge}]; ok {
				p.keep(api.KindSwitch, hostKey{h, br.Switch})
				continue
			}
			p.remove(bridgeKind{}, hostKey{h, bridge})
			p.change(api.KindSwitch, hostKey{h, br.Switch}, api.OpRemove, "")
		}
	}
	for k, sw := range wanted {
		if hr := rec.Hosts[k.host]; hr != nil {
			if _, ok := hr.Bridges[k.name]; ok {
				continue
			}
		}
		p.change(api.KindSwitch, hostKey{k.host, sw}, api.OpAdd, "")
	}
}

// wantedBridges are the bridges st needs, host and bridge name → switch:
// on every host with a guest on the switch, and where its routers and
// external side run.
func wantedBridges(st *topology.State) map[hostKey]string {
	out := map[hostKey]string{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			out[hostKey{g.Host, ifc.Bridge}] = ifc.Switch
		}
	}
	bridgeOf := map[string]string{}
	for _, sw := range st.Switches {
		bridgeOf[sw.Name] = sw.Bridge
	}
	for _, r := range st.Routers {
		for _, p := range r.Ports {
			out[hostKey{r.Host, bridgeOf[p.Switch]}] = p.Switch
		}
	}
	for _, sw := range st.Switches {
		if sw.External != nil {
			out[hostKey{sw.External.Host, sw.Bridge}] = sw.Name
		}
	}
	return out
}

func (bridgeKind) upPart(u *upRun) upPart { return &bridgeUp{u: u} }

// bridgeUp makes the bridges of one up.
type bridgeUp struct{ u *upRun }

// plan records, before anything is made, every bridge this up will make,
// and refuses a bridge that exists without being in the record.
func (b *bridgeUp) plan(ctx context.Context) (string, error) {
	u := b.u
	foreign := make([]bool, len(u.bridges))
	err := forEach(ctx, u.e.opts.Concurrency, len(u.bridges), true, func(ctx context.Context, i int) error {
		pb := u.bridges[i]
		var rec BridgeRecord
		u.led.view(func(r *Record) { rec, pb.recorded = r.host(pb.host.Name()).Bridges[pb.sw.Bridge] })
		exists, err := pb.host.Network().HasBridge(ctx, pb.sw.Bridge)
		if err != nil {
			return objectError("switch "+pb.sw.Name, fmt.Errorf("on %s: %w", pb.host.Name(), err))
		}
		pb.owned = pb.recorded && rec.Made
		pb.toMake = !exists && (pb.owned || !pb.recorded)
		// A provider network's bridge is another deployment's too.
		foreign[i] = exists && !pb.recorded && !sharedSwitch(&pb.sw)
		return nil
	})
	if err != nil {
		return "", err
	}
	var names []string
	for i, f := range foreign {
		if f {
			names = append(names, fmt.Sprintf("bridge %s on %s", u.bridges[i].sw.Bridge, u.bridges[i].host.Name()))
		}
	}
	if len(names) > 0 {
		return "", fmt.Errorf("%w: %s already exist but deployment %s did not make them (another server's, or made by hand); remove them or rename the deployment",
			ErrConflict, strings.Join(names, ", "), u.d.Name)
	}
	u.led.edit(func(r *Record) {
		for _, pb := range u.bridges {
			h := r.host(pb.host.Name())
			rec := h.Bridges[pb.sw.Bridge]
			if !pb.recorded {
				rec = BridgeRecord{Switch: pb.sw.Name, Made: true, Shared: sharedSwitch(&pb.sw)}
			}
			rec.Firewall = true
			h.Bridges[pb.sw.Bridge] = rec
		}
	})
	return count(len(u.bridges), "switch"), u.led.save(ctx)
}

func (b *bridgeUp) items() []item {
	u := b.u
	items := make([]item, len(u.bridges))
	for i, pb := range u.bridges {
		items[i] = func(ctx context.Context) error {
			net, host, name := pb.host.Network(), pb.host.Name(), pb.sw.Bridge
			pb.started = true
			undo := func(ctx context.Context) error {
				err := errors.Join(net.RemoveBridge(ctx, name), net.DeleteBridge(ctx, name))
				if err == nil {
					u.led.edit(func(r *Record) { delete(r.host(host).Bridges, name) })
				}
				return err
			}
			created, err := net.EnsureBridge(ctx, name)
			if err != nil {
				if pb.toMake {
					// It was missing and may exist now (a remote host can
					// finish what the main gave up waiting for): undo it
					// by name, as if made.
					u.made.add(undo)
				} else if !pb.recorded {
					u.led.edit(func(r *Record) { delete(r.host(host).Bridges, name) })
				}
				return objectError("switch "+pb.sw.Name, err)
			}
			how := "already there"
			switch {
			case created && pb.recorded:
				how = "made again (it was missing)"
				u.made.add(undo)
			case created:
				how = "created"
				u.made.add(undo)
			case pb.toMake && !pb.owned:
				// It appeared between plan and make: used, never deleted.
				u.led.edit(func(r *Record) {
					rec := r.host(host).Bridges[name]
					rec.Made = false
					r.host(host).Bridges[name] = rec
				})
				u.made.add(func(ctx context.Context) error {
					err := net.RemoveBridge(ctx, name)
					if err == nil {
						u.led.edit(func(r *Record) { delete(r.host(host).Bridges, name) })
					}
					return err
				})
			}
			if err := net.AllowBridge(ctx, name); err != nil {
				return objectError("switch "+pb.sw.Name, fmt.Errorf("firewall: %w", err))
			}
			u.log.Printf("    switch %s: bridge %s %s%s", pb.sw.Name, name, how, onHost(u.st, host))
			return nil
		}
	}
	return items
}

func (b *bridgeUp) forgetUnstarted(r *Record) {
	for _, pb := range b.u.bridges {
		if !pb.started && !pb.recorded {
			delete(r.host(pb.host.Name()).Bridges, pb.sw.Bridge)
		}
	}
}
