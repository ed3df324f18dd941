package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

// Routers and external switches run on the main host (the state names it
// as Router.Host and ExternalSide.Host; set_gateway_chassis is ignored). The
// "routers" stage comes after the bridges and tunnels and before the
// guests, so guests with ip: dynamic find their DHCP server running. DHCP
// servers are goroutines of the daemon: Resume starts them again when
// the daemon restarts with deployments up.

// Routers is what a host's Network implements when it can run routers; the
// engine finds it with a type assertion (RoutersOf), like Tunnels.
type Routers interface {
	// EnsureRouter makes the router if missing (reporting whether it did)
	// and makes sure its DHCP servers run.
	EnsureRouter(ctx context.Context, r topology.Router) (created bool, err error)
	// DeleteRouter stops its DHCP servers and removes it; a missing one is
	// fine.
	DeleteRouter(ctx context.Context, r topology.Router) error
	// ServeDHCP starts the DHCP servers of an existing router again,
	// handing out the leases given (MAC → address) as before.
	ServeDHCP(ctx context.Context, r topology.Router, leases map[string]string) error
	// EnsureExternal and DeleteExternal make and remove the host's side of
	// an external switch.
	EnsureExternal(ctx context.Context, sw topology.Switch) (created bool, err error)
	DeleteExternal(ctx context.Context, sw topology.Switch) error
	// Lease takes a DHCP lease on ifname inside the namespace at nsPath and
	// configures it there; it returns the address (CIDR) and the router.
	Lease(ctx context.Context, nsPath, ifname string) (addr, router string, err error)
}

// ErrNoRouters: a router is placed on a host whose network cannot run one.
var ErrNoRouters = api.Categorized(api.ErrInvalid, "the host's network cannot run routers")

// RoutersOf returns the routers of host h's network, or an error wrapping
// ErrNoRouters.
func RoutersOf(h Host) (Routers, error) {
	if r, ok := h.Network().(Routers); ok {
		return r, nil
	}
	return nil, fmt.Errorf("host %s: %w", h.Name(), ErrNoRouters)
}

// RouterRecord is a router, or the host's side of an external switch, on a
// host: exactly one of Router and External is set. It is written before
// the object is made.
type RouterRecord struct {
	Router   *topology.Router `json:"router,omitempty"`
	External *topology.Switch `json:"external,omitempty"`
	// Made: the deployment created it, so down removes it.
	Made bool `json:"made"`
}

// placedRouter is one router or external side of the state on its host.
type placedRouter struct {
	key  string // the record's key: the namespace, or the external table
	host Host
	net  Routers
	rec  RouterRecord
}

func (p placedRouter) describe() string {
	if p.rec.Router != nil {
		return "router " + p.rec.Router.Name
	}
	return "switch " + p.rec.External.Name + " (external)"
}

// routerBridges adds to u.bridges the switches routers and external sides
// need on their host, when no guest there brought them already.
func (u *upRun) routerBridges(seen map[[2]string]bool, byName map[string]topology.Switch) error {
	add := func(hostName, sw string) error {
		key := [2]string{hostName, sw}
		if seen[key] {
			return nil
		}
		h, err := u.e.opts.Hosts.Host(hostName)
		if err != nil {
			return fmt.Errorf("switch %s: %w", sw, err)
		}
		seen[key] = true
		u.bridges = append(u.bridges, placedBridge{sw: byName[sw], host: h})
		return nil
	}
	for _, r := range u.st.Routers {
		for _, p := range r.Ports {
			if err := add(r.Host, p.Switch); err != nil {
				return fmt.Errorf("router %s: %w", r.Name, err)
			}
		}
	}
	for _, sw := range u.st.Switches {
		if sw.External != nil {
			if err := add(sw.External.Host, sw.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// routerStage is up's stage for routers; only deployments with a router
// or an external switch have it.
func (u *upRun) routerStage() []stage {
	if len(u.st.Routers) == 0 && !hasExternal(u.st) {
		return nil
	}
	return []stage{{name: "routers", prepare: u.planRouters, items: u.routerItems, done: u.led.save}}
}

func hasExternal(st *topology.State) bool {
	for _, sw := range st.Switches {
		if sw.External != nil {
			return true
		}
	}
	return false
}

// planRouters records every router and external side before any is made.
func (u *upRun) planRouters(ctx context.Context) (string, error) {
	var placed []placedRouter
	place := func(hostName, key string, rec RouterRecord) error {
		h, err := u.e.opts.Hosts.Host(hostName)
		if err != nil {
			return err
		}
		net, err := RoutersOf(h)
		if err != nil {
			return err
		}
		placed = append(placed, placedRouter{key: key, host: h, net: net, rec: rec})
		return nil
	}
	for _, sw := range u.st.Switches {
		if sw.External != nil {
			if err := place(sw.External.Host, sw.External.Table, RouterRecord{External: &sw}); err != nil {
				return "", fmt.Errorf("switch %s: %w", sw.Name, err)
			}
		}
	}
	for _, r := range u.st.Routers {
		if err := place(r.Host, r.Namespace, RouterRecord{Router: &r}); err != nil {
			return "", fmt.Errorf("router %s: %w", r.Name, err)
		}
	}
	u.routers = placed
	u.routerRecorded = make([]bool, len(placed))
	u.routerOwned = make([]bool, len(placed))
	u.routerStarted = make([]bool, len(placed))
	u.led.edit(func(r *Record) {
		for i, p := range placed {
			h := r.host(p.host.Name())
			prev, ok := h.Routers[p.key]
			u.routerRecorded[i], u.routerOwned[i] = ok, ok && prev.Made
			rec := p.rec
			// Named from the deployment: ours even if it is there.
			rec.Made = true
			h.Routers[p.key] = rec
		}
	})
	return fmt.Sprintf("%s, %s", count(len(u.st.Routers), "router"), count(len(placed)-len(u.st.Routers), "external switch")), u.led.save(ctx)
}

func (u *upRun) routerItems() []item {
	items := make([]item, len(u.routers))
	for i, p := range u.routers {
		items[i] = func(ctx context.Context) error {
			host := p.host.Name()
			u.routerStarted[i] = true
			var created bool
			var err error
			if p.rec.Router != nil {
				created, err = p.net.EnsureRouter(ctx, *p.rec.Router)
				if err == nil && len(p.rec.Router.DHCP) > 0 {
					// A router made again (apply re-made it, a reboot
					// removed it) hands the dynamic guests that stay the
					// addresses they hold.
					var leases map[string]string
					u.led.view(func(r *Record) { leases = recordLeases(r) })
					if len(leases) > 0 {
						err = p.net.ServeDHCP(ctx, *p.rec.Router, leases)
						if err != nil && created {
							err = errors.Join(err, p.net.DeleteRouter(context.WithoutCancel(ctx), *p.rec.Router))
							created = false
						}
					}
				}
			} else {
				created, err = p.net.EnsureExternal(ctx, *p.rec.External)
			}
			if created || err != nil && !u.routerRecorded[i] {
				u.made.add(func(ctx context.Context) error {
					if err := deletePlacedRouter(ctx, p.net, p.rec); err != nil {
						return fmt.Errorf("%s: %w", p.describe(), err)
					}
					u.led.edit(func(r *Record) { delete(r.host(host).Routers, p.key) })
					return nil
				})
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p.describe(), err)
			}
			u.log.Printf("    %s: %s%s", p.describe(), ifThen(created, "created", "already there"), describeRouter(p.rec))
			return nil
		}
	}
	return items
}

func describeRouter(rec RouterRecord) string {
	if rec.Router == nil {
		return ", host side " + rec.External.External.Address + " masqueraded out"
	}
	s := ""
	for _, p := range rec.Router.Ports {
		s += fmt.Sprintf(", %s %s on %s", p.Name, p.Address, p.Switch)
	}
	if n := len(rec.Router.DHCP); n > 0 {
		s += fmt.Sprintf(", DHCP on %s", count(n, "switch"))
	}
	return s
}

func deletePlacedRouter(ctx context.Context, net Routers, rec RouterRecord) error {
	if rec.Router != nil {
		return net.DeleteRouter(ctx, *rec.Router)
	}
	return net.DeleteExternal(ctx, *rec.External)
}

// dropUnstartedRouters forgets, after a failed up, the routers this run
// recorded whose item never started.
func (u *upRun) dropUnstartedRouters(r *Record) {
	for i, p := range u.routers {
		if i < len(u.routerStarted) && !u.routerStarted[i] && !u.routerRecorded[i] {
			delete(r.host(p.host.Name()).Routers, p.key)
		}
	}
}

// recordedRouter is a router of the record, for down.
type recordedRouter struct {
	host, key string
	rec       RouterRecord
}

// routerStage is down's stage that removes the recorded routers and
// external sides, before the bridges their ports are on.
func (dr *downRun) routerStage() []stage {
	dr.led.view(func(r *Record) {
		for _, h := range dr.hostsOf(r) {
			for key, rec := range r.Hosts[h].Routers {
				if !dr.picked(pickRouters, h, key) {
					continue
				}
				dr.routers = append(dr.routers, recordedRouter{host: h, key: key, rec: rec})
			}
		}
	})
	if len(dr.routers) == 0 {
		return nil
	}
	sort.Slice(dr.routers, func(i, j int) bool { return dr.routers[i].key < dr.routers[j].key })
	return []stage{{name: "routers", detail: func() string { return count(len(dr.routers), "router") }, items: dr.routerItems, collect: true, done: dr.led.save}}
}

func (dr *downRun) routerItems() []item {
	items := make([]item, len(dr.routers))
	for i, rr := range dr.routers {
		items[i] = func(ctx context.Context) error {
			what := placedRouter{rec: rr.rec}.describe()
			if rr.rec.Made {
				host, err := dr.e.opts.Hosts.Host(rr.host)
				if err != nil {
					return dr.offline(rr.host, fmt.Errorf("%s: %w", what, err))
				}
				net, err := RoutersOf(host)
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				if err := deletePlacedRouter(ctx, net, rr.rec); err != nil {
					return dr.offline(rr.host, fmt.Errorf("%s: %w", what, err))
				}
			}
			dr.led.edit(func(r *Record) { delete(r.host(rr.host).Routers, rr.key) })
			dr.log.Printf("    %s: removed", what)
			return nil
		}
	}
	return items
}

// leaseDynamic takes the DHCP leases of a guest's ip: dynamic interfaces,
// inside the guest, right after it is made: interface name → CIDR.
func (u *upRun) leaseDynamic(ctx context.Context, pg placed) (map[string]string, error) {
	var out map[string]string
	for _, ifc := range pg.g.Interfaces {
		if !ifc.Dynamic {
			continue
		}
		nsPath, err := guestNetns(ctx, pg)
		if err != nil {
			return nil, err
		}
		if nsPath == "" {
			// A VM takes its lease with its own DHCP client (cloud-init
			// asks for dhcp4 on this NIC). TODO: kernel-boot guests'
			// initramfs and recording a VM's lease.
			u.log.Printf("    guest %s: %s is dynamic: the guest's own DHCP client takes its lease", pg.g.Name, ifc.Name)
			continue
		}
		net, err := RoutersOf(pg.host)
		if err != nil {
			return nil, err
		}
		addr, gw, err := net.Lease(ctx, nsPath, ifc.Name)
		if err != nil {
			return nil, fmt.Errorf("interface %s on switch %s: %w", ifc.Name, ifc.Switch, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[ifc.Name] = addr
		u.log.Printf("    guest %s: %s leased %s (router %s) on %s", pg.g.Name, ifc.Name, addr, gw, ifc.Switch)
	}
	return out, nil
}

// NetnsPather is what a guest driver implements when its guests live in a
// network namespace of their own that is not named after them (a docker
// container: /proc/<pid>/ns/net). netns guests need nothing.
type NetnsPather interface {
	NetnsPath(ctx context.Context, g *topology.Guest) (string, error)
}

// guestNetns is the namespace a guest's DHCP client runs in; "" for a
// guest that takes its lease itself (a VM).
func guestNetns(ctx context.Context, pg placed) (string, error) {
	if p, ok := pg.drv.(NetnsPather); ok {
		return p.NetnsPath(ctx, pg.g)
	}
	if pg.g.Netns != nil {
		return namespace.Path(pg.g.Netns.Namespace), nil
	}
	return "", nil
}

// Leases returns the DHCP leases of a deployment's guests: guest →
// interface name → address (CIDR). Guests without one are absent.
func (e *Engine) Leases(ctx context.Context, deployment string) (map[string]map[string]string, error) {
	rec, err := e.Deployed(ctx, deployment)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, h := range rec.Hosts {
		for name, gr := range h.Guests {
			if len(gr.Leases) > 0 {
				out[name] = gr.Leases
			}
		}
	}
	return out, nil
}

// restoreDHCP starts again the DHCP servers of every router rec holds,
// with the leases rec holds (Resume, at the server's start).
func (e *Engine) restoreDHCP(ctx context.Context, name string, rec *Record) []error {
	var errs []error
	leases := recordLeases(rec)
	for hostName, h := range rec.Hosts {
		for _, rr := range h.Routers {
			if rr.Router == nil || len(rr.Router.DHCP) == 0 {
				continue
			}
			host, err := e.opts.Hosts.Host(hostName)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			net, err := RoutersOf(host)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := net.ServeDHCP(ctx, *rr.Router, leases); err != nil {
				errs = append(errs, fmt.Errorf("deployment %s: %w", name, err))
			}
		}
	}
	return errs
}

// recordLeases are the DHCP leases the record's guests hold: MAC →
// address.
func recordLeases(rec *Record) map[string]string {
	leases := map[string]string{}
	for _, h := range rec.Hosts {
		for _, gr := range h.Guests {
			for _, ifc := range gr.Guest.Interfaces {
				if a, ok := gr.Leases[ifc.Name]; ok {
					if p, err := parseCIDRAddr(a); err == nil {
						leases[ifc.MAC] = p
					}
				}
			}
		}
	}
	return leases
}

func parseCIDRAddr(s string) (string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", err
	}
	return p.Addr().String(), nil
}

// routerCount says how many routers and external sides the record holds.
func (r *Record) routerCount() (n int) {
	for _, h := range r.Hosts {
		n += len(h.Routers)
	}
	return n
}
