package server

import (
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
		Network: netplumb.NewHost(log),
		Logger:  log,
	})
}
