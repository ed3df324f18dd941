package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/impair"
	"github.com/testbedos/testbedos/internal/topology"
)

// LinkImpairer is the Impairer of hosts whose network implements LinkOps:
// it sets the netem of one interface on the host-side end of its link
// (a netem or tbf qdisc, or the userspace fallback where the kernel has no
// netem) and sets the link up.
type LinkImpairer struct{}

var _ Impairer = LinkImpairer{}

// Impair implements Impairer.
func (LinkImpairer) Impair(ctx context.Context, host Host, dep guest.Deployment, g *topology.Guest, iface string, n *topology.Netem) error {
	var ifc *topology.Interface
	for i := range g.Interfaces {
		if g.Interfaces[i].Name == iface {
			ifc = &g.Interfaces[i]
		}
	}
	if ifc == nil {
		return fmt.Errorf("guest %s has no interface %s", g.Name, iface)
	}
	ops, err := hostLinkOps(host, g.Name)
	if err != nil {
		return err
	}
	var imp impair.Impairment
	if n != nil {
		imp = impair.Impairment{DelayMS: n.DelayMS, JitterMS: n.JitterMS, LossPct: n.LossPct, RateKbit: n.RateKbit, CorruptPct: n.CorruptPct}
	}
	return linkUnsupported(ops.Impair(ctx, ifc.HostName, imp, true))
}

// runtimeDiffs describes the recorded run-time settings of a guest that
// differ from what kvm-compose.yaml says for its interfaces (g): what apply
// sets back. Sorted by interface.
func runtimeDiffs(gr GuestRecord, g *topology.Guest) []string {
	var out []string
	for i := range g.Interfaces {
		ifc := &g.Interfaces[i]
		rt, ok := gr.Impairments[ifc.Name]
		if !ok {
			continue
		}
		yaml, _ := effectiveImpairment(GuestRecord{}, ifc)
		if rt == yaml {
			continue
		}
		out = append(out, fmt.Sprintf("%s: runtime %s → yaml %s", ifc.Name, describeImpairment(rt), describeImpairment(yaml)))
	}
	sort.Strings(out)
	return out
}

func describeImpairment(imp api.Impairment) string {
	d := topology.NetemOf(imp).String()
	if !imp.Up {
		d += ", link down"
	}
	return d
}

// Resume starts again, at the server's start, what of the deployments the
// records hold runs in this process and so ended with the previous one:
// the routers' DHCP servers (with the recorded leases), and the userspace
// impairments of kernels without netem (what is in force on the links of
// recorded guests: kvm-compose.yaml's netem or the run-time setting). Links
// that do not exist (yet) are left to up, which sets them when it makes
// them. It reads each record once, carries on past errors and returns them
// all.
func (e *Engine) Resume(ctx context.Context) error {
	names, err := e.opts.Records.DeployedNames(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		rec, err := e.Deployed(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, e.restoreDHCP(ctx, name, &rec)...)
		errs = append(errs, e.restoreImpairments(ctx, name, &rec)...)
	}
	return errors.Join(errs...)
}

// restoreImpairments sets again what is in force on the links of rec's
// guests (Resume).
func (e *Engine) restoreImpairments(ctx context.Context, name string, rec *Record) []error {
	var errs []error
	for hostName, h := range rec.Hosts {
		host, err := e.opts.Hosts.Host(hostName)
		if err != nil {
			continue
		}
		// A client host's userspace impairments run in its own process,
		// which this one's start did not end.
		if _, local := host.(*LocalHost); !local {
			continue
		}
		ops, err := LinkOpsOf(host)
		if err != nil {
			continue
		}
		for _, gr := range h.Guests {
			if gr.Pending {
				continue
			}
			for i := range gr.Guest.Interfaces {
				ifc := &gr.Guest.Interfaces[i]
				imp, _ := effectiveImpairment(gr, ifc)
				if imp == (api.Impairment{Up: true}) {
					continue
				}
				if _, err := ops.LinkUp(ctx, ifc.HostName); err != nil {
					continue // not there: up makes it
				}
				if err := ops.Impair(ctx, ifc.HostName, linkImpairment(imp), imp.Up); err != nil {
					errs = append(errs, fmt.Errorf("deployment %s: guest %s: %w", name, gr.Guest.Name, err))
				}
			}
		}
	}
	return errs
}
