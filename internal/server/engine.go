package server

import (
	"context"
	"log/slog"

	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/netplumb"
)

// newEngine assembles the orchestration engine of this host. Every guest
// kind is registered here, in one list.
func newEngine(log *slog.Logger) *engine.Engine {
	drivers := guest.NewRegistry(
		netns.New(netns.Options{}),
	)
	return engine.New(engine.Options{
		Drivers: drivers,
		Network: hostNetwork{fw: netplumb.NewFirewall(log)},
		Logger:  log,
	})
}

// hostNetwork is engine.Network on this host's kernel.
type hostNetwork struct{ fw *netplumb.Firewall }

func (n hostNetwork) EnsureBridge(ctx context.Context, name string) (bool, error) {
	existed, err := netplumb.LinkExists(name)
	if err != nil {
		return false, err
	}
	return !existed, netplumb.EnsureBridge(ctx, name)
}

func (n hostNetwork) DeleteBridge(ctx context.Context, name string) error {
	return netplumb.DeleteBridge(ctx, name)
}
func (n hostNetwork) AllowBridge(name string) error  { return n.fw.AllowBridge(name) }
func (n hostNetwork) RemoveBridge(name string) error { return n.fw.RemoveBridge(name) }
