package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/docker"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/netplumb"
	"github.com/testbedos/testbedos/internal/store"
)

// newLocalHost assembles this host as the engine drives it: netlink
// bridges and every guest kind, registered here in one list.
func newLocalHost(cfg config.Server, hostName string, log *slog.Logger) (*engine.LocalHost, error) {
	lv := libvirt.Options{
		Socket: cfg.Libvirt.Socket, DomainType: cfg.Libvirt.DomainType, ProbeKernel: cfg.Libvirt.ProbeKernel,
		ImageCache: cfg.Libvirt.ImageCache, ReadyTimeout: cfg.Libvirt.ReadyTimeout, Logger: log,
	}
	// The docker client contacts dockerd only when a docker guest is used:
	// a host without one starts, and such guests fail naming the daemon.
	dk, err := docker.New(docker.Options{})
	if err != nil {
		return nil, err
	}
	return &engine.LocalHost{
		HostName: hostName,
		Net:      netplumb.NewHost(log),
		Drivers: guest.NewRegistry(
			netns.New(netns.Options{}),
			libvirt.New(lv),
			dk,
		),
	}, nil
}

// newEngine is the orchestration engine over hosts, recording what it
// deploys in st.
func newEngine(hosts engine.Hosts, st store.Store, log *slog.Logger) *engine.Engine {
	return engine.New(engine.Options{Hosts: hosts, Records: records{st}, Logger: log, Impairer: engine.LinkImpairer{}})
}

// agentRoutes mounts, on a client host, the agent API the main drives
// (behind requireMember): this host's own drivers and network.
func (s *Server) agentRoutes(local *engine.LocalHost) func(*http.ServeMux) []string {
	return func(mux *http.ServeMux) []string {
		mux.Handle("/api/agent/", agent.Handler(agent.Options{
			Name: s.host.Name, DataDir: s.cfg.DataDir, Drivers: local.Drivers, Network: local.Net,
			Logger: s.log.With("part", "agent"),
		}))
		return []string{"/api/agent/"}
	}
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
