package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/net/impair"
	"github.com/testbedos/testbedos/internal/topology"
)

// LinkOps is the capability of impairing and capturing the host-side ends
// of guest links (hostnet.Host has it; the agent's proxy of a client host
// relays it to the client's own network).
type LinkOps interface {
	// Impair sets the link's netem qdisc (the zero Impairment removes it)
	// and sets the link up or down.
	Impair(ctx context.Context, link string, imp impair.Impairment, up bool) error
	LinkUp(ctx context.Context, link string) (bool, error)
	// Capture writes a pcap stream of the link's packets (those that pass
	// the compiled filter) to w until ctx ends.
	Capture(ctx context.Context, link string, filter capture.Filter, w io.Writer) error
}

// ErrNoLinkOps: the host's network cannot impair or capture links.
var ErrNoLinkOps = errors.New("the host's network cannot impair or capture links")

// LinkOpsOf returns the link operations of host h's network, or an error
// wrapping ErrNoLinkOps.
func LinkOpsOf(h Host) (LinkOps, error) { return capability[LinkOps](h, ErrNoLinkOps) }

// liveGuest is a guest of an up deployment as the record has it, with its
// driver on its host.
type liveGuest struct {
	dep  api.Deployment
	gdep guest.Deployment
	g    topology.Guest
	host Host
	drv  guest.Driver
	rec  GuestRecord
}

// liveGuest finds guest name of d: the deployment must be up, the guest in
// its state and recorded as made (nothing runs on a guest the record does
// not hold).
func (e *Engine) liveGuest(ctx context.Context, d api.Deployment, name string) (*liveGuest, error) {
	lg, err := e.recordedGuest(ctx, d, name)
	if err == nil && lg.rec.Stopped {
		return nil, fmt.Errorf("%w: guest %s of deployment %s is stopped: start it first (kvm-compose start %s)", ErrConflict, name, d.Name, name)
	}
	return lg, err
}

// recordedGuest is liveGuest for a guest that may be stopped.
func (e *Engine) recordedGuest(ctx context.Context, d api.Deployment, name string) (*liveGuest, error) {
	st, err := e.readState(d)
	if err != nil {
		return nil, err
	}
	var names []string
	var sg *topology.Guest
	for i := range st.Guests {
		names = append(names, st.Guests[i].Name)
		if st.Guests[i].Name == name {
			sg = &st.Guests[i]
		}
	}
	if sg == nil {
		return nil, inCategory(ErrNotFound, fmt.Errorf("deployment %s has no guest %s (guests: %s)", d.Name, name, orNone(strings.Join(names, ", "))))
	}
	if !d.State.Is(api.StateUp) {
		return nil, fmt.Errorf("%w: deployment %s is %s, not up: run up first (or wait for its action to end)", ErrConflict, d.Name, d.State.Kind)
	}
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		return nil, err
	}
	hr := rec.Hosts[sg.Host]
	var gr GuestRecord
	ok := false
	if hr != nil {
		gr, ok = hr.Guests[name]
	}
	if !ok || gr.Pending {
		return nil, fmt.Errorf("%w: guest %s of deployment %s is not recorded as made on host %s: run up", ErrConflict, name, d.Name, sg.Host)
	}
	host, err := e.opts.Hosts.Host(gr.Guest.Host)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", name, err)
	}
	drv, err := host.Driver(gr.Guest.Kind)
	if err != nil {
		return nil, fmt.Errorf("guest %s: %w", name, err)
	}
	return &liveGuest{
		dep: d, gdep: guestDeployment(d.Name, host, d.ProjectLocation),
		g: gr.Guest, host: host, drv: drv, rec: gr,
	}, nil
}

// iface returns the guest's interface called name.
func (lg *liveGuest) iface(name string) (*topology.Interface, error) {
	var names []string
	for i := range lg.g.Interfaces {
		ifc := &lg.g.Interfaces[i]
		if ifc.Name == name {
			return ifc, nil
		}
		names = append(names, ifc.Name)
	}
	return nil, inCategory(ErrNotFound, fmt.Errorf("guest %s has no interface %s (interfaces: %s)", lg.g.Name, name, orNone(strings.Join(names, ", "))))
}

// linkOps returns the link operations of the guest's host (on a client
// host, relayed by its agent).
func (lg *liveGuest) linkOps() (LinkOps, error) {
	return hostLinkOps(lg.host, lg.g.Name)
}

// linkUnsupported puts an error of link operations that a host cannot do
// (no netem in its kernel; on a client host, a network without them) in
// the category of what is unsupported.
func linkUnsupported(err error) error {
	if errors.Is(err, impair.ErrNoNetem) || errors.Is(err, ErrNoLinkOps) {
		return inCategory(ErrUnsupported, err)
	}
	return err
}

// unsupported is the error of a driver without the feature asked for.
func (lg *liveGuest) unsupported(err error) error {
	return fmt.Errorf("guest %s: %w", lg.g.Name, err)
}

// hostLinkOps is LinkOpsOf for guest g's host; without them the error is
// in the category of what is unsupported.
func hostLinkOps(host Host, g string) (LinkOps, error) {
	l, err := LinkOpsOf(host)
	if err != nil {
		return nil, inCategory(ErrUnsupported, fmt.Errorf("guest %s: %w", g, err))
	}
	return l, nil
}

// Exec runs a command in a guest of an up deployment (guest.Execer).
func (e *Engine) Exec(ctx context.Context, d api.Deployment, guestName string, cmd guest.Command) (int, error) {
	lg, err := e.liveGuest(ctx, d, guestName)
	if err != nil {
		return 0, err
	}
	x, err := guest.As[guest.Execer](lg.drv)
	if err != nil {
		return 0, lg.unsupported(err)
	}
	return x.Exec(ctx, lg.gdep, &lg.g, cmd)
}

// Console opens the interactive terminal of a guest of an up deployment.
func (e *Engine) Console(ctx context.Context, d api.Deployment, guestName string) (guest.Terminal, error) {
	lg, err := e.liveGuest(ctx, d, guestName)
	if err != nil {
		return nil, err
	}
	c, err := guest.As[guest.Consoler](lg.drv)
	if err != nil {
		return nil, lg.unsupported(err)
	}
	return c.Console(ctx, lg.gdep, &lg.g)
}

// Capture writes a pcap stream of one guest interface to w until ctx ends.
// It captures on the host-side end of the link, the same for every kind.
// Errors before the first byte is written are the caller's to answer.
func (e *Engine) Capture(ctx context.Context, d api.Deployment, guestName, ifaceName string, filter capture.Filter, w io.Writer) error {
	lg, err := e.liveGuest(ctx, d, guestName)
	if err != nil {
		return err
	}
	ifc, err := lg.iface(ifaceName)
	if err != nil {
		return err
	}
	ops, err := lg.linkOps()
	if err != nil {
		return err
	}
	return linkUnsupported(ops.Capture(ctx, ifc.HostName, filter, w))
}

// GetImpairment answers the run-time setting of one guest interface.
func (e *Engine) GetImpairment(ctx context.Context, d api.Deployment, guestName, ifaceName string) (api.InterfaceImpairment, error) {
	lg, err := e.liveGuest(ctx, d, guestName)
	if err != nil {
		return api.InterfaceImpairment{}, err
	}
	ifc, err := lg.iface(ifaceName)
	if err != nil {
		return api.InterfaceImpairment{}, err
	}
	ops, err := lg.linkOps()
	if err != nil {
		return api.InterfaceImpairment{}, err
	}
	imp, source := effectiveImpairment(lg.rec, ifc)
	up, err := ops.LinkUp(ctx, ifc.HostName)
	if err != nil {
		return api.InterfaceImpairment{}, fmt.Errorf("guest %s: %w", guestName, err)
	}
	imp.Up = up
	return api.InterfaceImpairment{Guest: guestName, Interface: ifaceName, HostLink: ifc.HostName, Impairment: imp, Source: source}, nil
}

// ErrBadImpairment: an impairment out of range (422).
var ErrBadImpairment = api.Categorized(api.ErrInvalid, "invalid impairment")

// SetImpairment replaces the run-time setting of one guest interface, on
// the link and in the record (so it survives a restart of the server and is
// set again when up re-makes the guest).
func (e *Engine) SetImpairment(ctx context.Context, d api.Deployment, guestName, ifaceName string, imp api.Impairment) (api.InterfaceImpairment, error) {
	if probs := topology.NetemOf(imp).Check(); probs != nil {
		var msgs []string
		for _, f := range []string{"delay_ms", "jitter_ms", "loss_pct", "rate_kbit", "corrupt_pct"} {
			if m, ok := probs[f]; ok {
				msgs = append(msgs, f+": "+m)
			}
		}
		return api.InterfaceImpairment{}, fmt.Errorf("%w: %s", ErrBadImpairment, strings.Join(msgs, "; "))
	}
	e.impMu.Lock()
	defer e.impMu.Unlock()
	lg, err := e.liveGuest(ctx, d, guestName)
	if err != nil {
		return api.InterfaceImpairment{}, err
	}
	ifc, err := lg.iface(ifaceName)
	if err != nil {
		return api.InterfaceImpairment{}, err
	}
	ops, err := lg.linkOps()
	if err != nil {
		return api.InterfaceImpairment{}, err
	}
	l, err := openLedger(ctx, e.opts.Records, d.Name, d.ProjectLocation)
	if err != nil {
		return api.InterfaceImpairment{}, err
	}
	var prev api.Impairment
	var had bool
	l.edit(func(r *Record) {
		h := r.host(lg.g.Host)
		gr := h.Guests[guestName]
		prev, had = gr.Impairments[ifaceName]
		if gr.Impairments == nil {
			gr.Impairments = map[string]api.Impairment{}
		}
		gr.Impairments[ifaceName] = imp
		h.Guests[guestName] = gr
	})
	// Recorded first, like every object the daemon makes.
	if err := l.save(ctx); err != nil {
		return api.InterfaceImpairment{}, err
	}
	if err := ops.Impair(ctx, ifc.HostName, linkImpairment(imp), imp.Up); err != nil {
		err = fmt.Errorf("guest %s: %w", guestName, err)
		// Not in force: the record says what is. The link may be half
		// set (qdisc removed); setting the previous value back fixes it.
		l.edit(func(r *Record) {
			gr := r.host(lg.g.Host).Guests[guestName]
			if had {
				gr.Impairments[ifaceName] = prev
			} else {
				delete(gr.Impairments, ifaceName)
			}
			r.host(lg.g.Host).Guests[guestName] = gr
		})
		if serr := l.save(ctx); serr != nil {
			err = errors.Join(err, serr)
		}
		old, _ := effectiveImpairment(lg.rec, ifc) // lg.rec is from before
		_ = ops.Impair(ctx, ifc.HostName, linkImpairment(old), old.Up)
		return api.InterfaceImpairment{}, linkUnsupported(err)
	}
	return api.InterfaceImpairment{Guest: guestName, Interface: ifaceName, HostLink: ifc.HostName, Impairment: imp, Source: "runtime"}, nil
}

// RecordedImpairments returns the run-time impairments recorded for the
// guests of deployment name, by guest and then interface name (what plan
// compares with kvm-compose.yaml's netem). Guests without any are left out;
// nothing recorded is an empty map.
func (e *Engine) RecordedImpairments(ctx context.Context, name string) (map[string]map[string]api.Impairment, error) {
	rec, err := e.Deployed(ctx, name)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]api.Impairment{}
	for _, h := range rec.Hosts {
		for g, gr := range h.Guests {
			if len(gr.Impairments) > 0 {
				m := make(map[string]api.Impairment, len(gr.Impairments))
				for k, v := range gr.Impairments {
					m[k] = v
				}
				out[g] = m
			}
		}
	}
	return out, nil
}

// effectiveImpairment is what is in force on an interface: the run-time
// setting recorded, else kvm-compose.yaml's netem with the link up.
func effectiveImpairment(gr GuestRecord, ifc *topology.Interface) (api.Impairment, string) {
	if imp, ok := gr.Impairments[ifc.Name]; ok {
		return imp, "runtime"
	}
	imp := api.Impairment{Up: true}
	if n := ifc.Netem; n != nil {
		imp.DelayMS, imp.JitterMS, imp.LossPct, imp.RateKbit, imp.CorruptPct = n.DelayMS, n.JitterMS, n.LossPct, n.RateKbit, n.CorruptPct
	}
	return imp, "yaml"
}

// impairGuest sets every interface of a guest just made to what is in
// force: kvm-compose.yaml's netem, or the run-time setting recorded for it.
// Interfaces with nothing to set are not touched.
func impairGuest(ctx context.Context, host Host, gr GuestRecord, g *topology.Guest) (string, error) {
	var done []string
	for i := range g.Interfaces {
		ifc := &g.Interfaces[i]
		imp, source := effectiveImpairment(gr, ifc)
		if imp == (api.Impairment{Up: true}) {
			continue
		}
		ops, err := hostLinkOps(host, g.Name)
		if err != nil {
			return "", err
		}
		if err := ops.Impair(ctx, ifc.HostName, linkImpairment(imp), imp.Up); err != nil {
			return "", fmt.Errorf("guest %s: %w", g.Name, err)
		}
		d := topology.NetemOf(imp).String()
		if !imp.Up {
			d += ", link down"
		}
		done = append(done, fmt.Sprintf("%s %s (%s)", ifc.Name, d, source))
	}
	return strings.Join(done, ", "), nil
}

// resetImpairments sets every interface of a running guest back to what
// kvm-compose.yaml says (its netem, or none, and the link up), whatever is
// on the links now. It is for apply, which then drops the guest's recorded
// run-time settings (GuestRecord.Impairments) in its ledger.
func resetImpairments(ctx context.Context, host Host, g *topology.Guest) error {
	ops, err := LinkOpsOf(host)
	if err != nil {
		for i := range g.Interfaces {
			if !g.Interfaces[i].Netem.IsZero() {
				return inCategory(ErrUnsupported, fmt.Errorf("guest %s: %s has netem: %w", g.Name, g.Interfaces[i].Name, err))
			}
		}
		return nil
	}
	for i := range g.Interfaces {
		ifc := &g.Interfaces[i]
		imp, _ := effectiveImpairment(GuestRecord{}, ifc)
		if err := ops.Impair(ctx, ifc.HostName, linkImpairment(imp), true); err != nil {
			return fmt.Errorf("guest %s: %w", g.Name, err)
		}
	}
	return nil
}

func linkImpairment(imp api.Impairment) impair.Impairment {
	return impair.Impairment{DelayMS: imp.DelayMS, JitterMS: imp.JitterMS, LossPct: imp.LossPct, RateKbit: imp.RateKbit, CorruptPct: imp.CorruptPct}
}
