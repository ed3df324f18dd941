package netplumb

import (
	"context"
	"log/slog"
)

// Network is this host's plumbing as the engine drives it: bridges plus the
// firewall exception for them.
type Network struct {
	*Firewall
}

// NewNetwork returns the host's plumbing; log receives firewall changes.
func NewNetwork(log *slog.Logger) *Network {
	return &Network{Firewall: NewFirewall(log)}
}

// EnsureBridge makes the bridge if it is missing, sets it up and reports
// whether it made it (so a failed up removes only bridges it created).
func (n *Network) EnsureBridge(ctx context.Context, name string) (created bool, err error) {
	return ensureBridge(ctx, name)
}

// DeleteBridge removes the bridge; a missing one is fine.
func (n *Network) DeleteBridge(ctx context.Context, name string) error {
	return DeleteBridge(ctx, name)
}
