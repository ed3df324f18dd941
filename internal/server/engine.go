package server

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/netplumb"
	"github.com/testbedos/testbedos/internal/store"
)

// newEngine assembles the orchestration engine of this host. Every guest
// kind is registered here, in one list.
func newEngine(cfg config.Server, st store.Store, hostName string, log *slog.Logger) (*engine.Engine, error) {
	lv, err := libvirt.FromEnv(os.LookupEnv, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	lv.Logger = log
	local := &engine.LocalHost{
		HostName: hostName,
		Net:      netplumb.NewHost(log),
		Drivers: guest.NewRegistry(
			netns.New(netns.Options{}),
			libvirt.New(lv),
		),
	}
	return engine.New(engine.Options{
		Hosts:   engine.SingleHost{Main: local},
		Records: records{st},
		Logger:  log,
	}), nil
}

// records keeps the engine's records of what is deployed in the store; the
// store's DeployedNames lists them (for VNIs unique across deployments).
type records struct{ store.Store }

var _ engine.Records = records{}

// Deployed implements engine.Records: nothing recorded is nil, nil.
func (r records) Deployed(ctx context.Context, name string) ([]byte, error) {
	data, err := r.Store.Deployed(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return data, err
}

// hostName is this machine's name in the cluster; the one place that reads
// it.
func hostName() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "localhost"
	}
	return name
}
