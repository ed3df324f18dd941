package server

import (
	"log/slog"
	"os"

	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/netplumb"
)

// newEngine assembles the orchestration engine of this host. Every guest
// kind is registered here, in one list.
func newEngine(cfg config.Server, log *slog.Logger) (*engine.Engine, error) {
	lv, err := libvirt.FromEnv(os.LookupEnv, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	lv.Logger = log
	drivers := guest.NewRegistry(
		netns.New(netns.Options{}),
		libvirt.New(lv),
	)
	return engine.New(engine.Options{
		Drivers: drivers,
		Network: netplumb.NewHost(log),
		Logger:  log,
	}), nil
}
