// Package hostnet is this machine's network as the engine drives it: one
// Host over the bridge, vxlan, router, dhcp, aclnft, impair and capture
// packages, holding what must live as long as the daemon (DHCP servers,
// userspace impairment queues, the firewall's lock).
package hostnet

import (
	"context"
	"io"
	"log/slog"

	"github.com/testbedos/testbedos/internal/net/aclnft"
	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/net/dhcp"
	"github.com/testbedos/testbedos/internal/net/impair"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/vxlan"
	"github.com/testbedos/testbedos/internal/topology"
)

// Host is the network of this machine: bridges made through netlink, the
// firewall rules that let their ports talk, tunnels, routers with their
// DHCP servers, ACL tables, impairments and captures.
type Host struct {
	log *slog.Logger
	fw  *bridge.Firewall
	// dhcp holds the DHCP servers of the routers on this host.
	dhcp dhcp.Servers
	// shaper keeps the userspace impairments of links where the kernel
	// has no netem.
	shaper *impair.Shaper
}

// NewHost returns the network of this host; log receives firewall, DHCP
// and impairment changes.
func NewHost(log *slog.Logger) *Host {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Host{log: log, fw: bridge.NewFirewall(log), shaper: impair.NewShaper(log)}
}

// EnsureBridge makes the bridge if it is missing, sets it up and reports
// whether it made it (so a failed up removes only bridges it created).
func (h *Host) EnsureBridge(ctx context.Context, name string) (bool, error) {
	return bridge.Ensure(ctx, name)
}

// HasBridge reports whether a bridge called name exists; a link of another
// kind by that name is not a bridge.
func (h *Host) HasBridge(ctx context.Context, name string) (bool, error) { return bridge.Exists(name) }

// DeleteBridge removes the bridge; a missing one is fine.
func (h *Host) DeleteBridge(ctx context.Context, name string) error { return bridge.Delete(ctx, name) }

// AllowBridge lets traffic between the bridge's ports through the firewall.
func (h *Host) AllowBridge(ctx context.Context, name string) error { return h.fw.AllowBridge(name) }

// RemoveBridge removes the firewall rules of the bridge.
func (h *Host) RemoveBridge(ctx context.Context, name string) error { return h.fw.RemoveBridge(name) }

// EnsureTunnel makes the VXLAN link of spec on its bridge, with one FDB
// entry per peer, and reports whether it made the link.
func (h *Host) EnsureTunnel(ctx context.Context, spec vxlan.Spec) (bool, error) {
	return vxlan.Ensure(ctx, spec)
}

// DeleteTunnel removes the VXLAN link name; a missing one is fine.
func (h *Host) DeleteTunnel(ctx context.Context, name string) error { return vxlan.Delete(ctx, name) }

// HasTunnel reports whether the VXLAN link name exists (restore after a
// reboot compares the record with what exists).
func (h *Host) HasTunnel(ctx context.Context, name string) (bool, error) {
	return links.Exists(name)
}

// EnsureExternal sets up the host's side of an external switch and reports
// whether it made it.
func (h *Host) EnsureExternal(ctx context.Context, sw topology.Switch) (bool, error) {
	return h.fw.EnsureExternal(ctx, sw)
}

// DeleteExternal removes the host's side of an external switch; what is
// missing is fine.
func (h *Host) DeleteExternal(ctx context.Context, sw topology.Switch) error {
	return h.fw.DeleteExternal(ctx, sw)
}

// HasExternal reports whether the host's side of external switch sw is
// there: its table and the address on the bridge.
func (h *Host) HasExternal(ctx context.Context, sw topology.Switch) (bool, error) {
	return bridge.HasExternal(ctx, sw)
}

// EnsureACLTable makes the deployment's ACL table on this host exactly
// spec and reports whether it made it; the log says how allow-related
// lets replies through here (ACLReplies).
func (h *Host) EnsureACLTable(ctx context.Context, spec aclnft.TableSpec) (bool, error) {
	created, rep, err := aclnft.EnsureTableReplies(ctx, spec)
	if err == nil {
		h.log.Info("acl: "+rep.String(), "table", spec.Name)
	}
	return created, err
}

// ACLReplies says how allow-related lets replies through on this host:
// statefully (conntrack through br_netfilter) or by mirrored rules.
func (h *Host) ACLReplies(ctx context.Context) string { return aclnft.TrackedReplies().String() }

// DeleteACLTable removes the ACL table name; a missing one is fine.
func (h *Host) DeleteACLTable(ctx context.Context, name string) error {
	return aclnft.DeleteTable(ctx, name)
}

// Impair sets imp on the link and sets it up or down: netem where the
// kernel has it, the userspace fallback where not.
func (h *Host) Impair(ctx context.Context, link string, imp impair.Impairment, up bool) error {
	return h.shaper.Impair(ctx, link, imp, up)
}

// StopImpairments stops every userspace queue of this host (its tables
// removed, held packets accepted): the daemon's shutdown.
func (h *Host) StopImpairments() error { return h.shaper.Close() }

// LinkUp reports whether the link is administratively up.
func (h *Host) LinkUp(ctx context.Context, link string) (bool, error) { return links.IsUp(ctx, link) }

// Capture writes a pcap stream of the link's packets to w until ctx ends.
func (h *Host) Capture(ctx context.Context, link string, filter capture.Filter, w io.Writer) error {
	return capture.Capture(ctx, link, filter, w)
}

// Lease asks the DHCP server on ifname's switch for an address from inside
// the namespace mounted at nsPath and sets it there (dhcp.Lease).
func (h *Host) Lease(ctx context.Context, nsPath, ifname string) (addr, router string, err error) {
	return dhcp.Lease(ctx, nsPath, ifname)
}
