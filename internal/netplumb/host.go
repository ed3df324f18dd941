package netplumb

import (
	"context"
	"log/slog"
)

// Host is the network of this machine as the engine drives it: bridges made
// through netlink and the firewall rules that let their ports talk.
type Host struct {
	fw *Firewall
	// dhcp holds the DHCP servers of the routers on this host (dhcp.go).
	dhcp dhcpServers
	// queues are the userspace impairments of links where the kernel has
	// no netem (usrimpair.go).
	queues userQueues
}

// NewHost returns the network of this host; log receives firewall changes.
func NewHost(log *slog.Logger) *Host {
	return &Host{fw: NewFirewall(log), queues: userQueues{log: log}}
}

// EnsureBridge makes the bridge if it is missing, sets it up and reports
// whether it made it (so a failed up removes only bridges it created). The
// report comes from the kernel's answer to the creation, so two concurrent
// callers never both think they made it.
func (h *Host) EnsureBridge(ctx context.Context, name string) (bool, error) {
	return ensureBridge(ctx, name)
}

// HasBridge reports whether a bridge called name exists; a link of another
// kind by that name is not a bridge.
func (h *Host) HasBridge(ctx context.Context, name string) (bool, error) { return BridgeExists(name) }

// DeleteBridge removes the bridge; a missing one is fine.
func (h *Host) DeleteBridge(ctx context.Context, name string) error { return DeleteBridge(ctx, name) }

// AllowBridge lets traffic between the bridge's ports through the firewall.
func (h *Host) AllowBridge(ctx context.Context, name string) error { return h.fw.AllowBridge(name) }

// RemoveBridge removes the firewall rules of the bridge.
func (h *Host) RemoveBridge(ctx context.Context, name string) error { return h.fw.RemoveBridge(name) }

// EnsureTunnel makes the VXLAN link of spec on its bridge, with one FDB
// entry per peer, and reports whether it made the link (EnsureVXLAN).
func (h *Host) EnsureTunnel(ctx context.Context, spec VXLANSpec) (bool, error) {
	return EnsureVXLAN(ctx, spec)
}

// DeleteTunnel removes the VXLAN link name; a missing one is fine.
func (h *Host) DeleteTunnel(ctx context.Context, name string) error { return DeleteVXLAN(ctx, name) }

// EnsureACLTable makes the deployment's ACL table on this host exactly
// spec and reports whether it made it (EnsureACLTable).
func (h *Host) EnsureACLTable(ctx context.Context, spec ACLTableSpec) (bool, error) {
	return EnsureACLTable(ctx, spec)
}

// DeleteACLTable removes the ACL table name; a missing one is fine.
func (h *Host) DeleteACLTable(ctx context.Context, name string) error {
	return DeleteACLTable(ctx, name)
}
