package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/docker"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/images"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
)

// newLocalHost assembles this host as the engine drives it: netlink
// bridges and every guest kind, registered here in one list.
func newLocalHost(cfg config.Server, hostName string, imgs *images.Store, log *slog.Logger) (*engine.LocalHost, error) {
	instance, err := instanceID(cfg.InstanceIDPath())
	if err != nil {
		return nil, err
	}
	lv, err := libvirt.FromEnv(os.LookupEnv, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	lv.Logger, lv.Instance, lv.Images = log, instance, imgs
	// The docker client contacts dockerd only when a docker guest is used:
	// a host without one starts, and such guests fail naming the daemon.
	dk, err := docker.New(docker.Options{Instance: instance, MountsDir: cfg.MountsDir()})
	if err != nil {
		return nil, err
	}
	return &engine.LocalHost{
		HostName:  hostName,
		Generated: cfg.GeneratedDir(),
		Net:       hostnet.NewHost(log),
		Drivers: guest.NewRegistry(
			netns.New(netns.Options{}),
			libvirt.New(lv),
			dk,
		),
	}, nil
}

// imageStore is the server's VM image cache, where the libvirt driver
// keeps its images (TESTBEDOS_LIBVIRT_IMAGE_CACHE, default
// <data>/cache/images; the original's <data>/images/<name>.img taken in).
func imageStore(cfg config.Server) (*images.Store, error) {
	lv, err := libvirt.FromEnv(os.LookupEnv, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return images.New(images.Options{Dir: lv.ImageCache, Legacy: lv.ImagesDir, DisksDir: lv.DisksDir}), nil
}

// The libvirt driver reads the DHCP leases of VMs from the guests.
var _ engine.LeaseReader = (*libvirt.Driver)(nil)

// instanceID is this server's instance id, made at its first start: the
// drivers mark what they make with it.
func instanceID(path string) (string, error) {
	data, err := topology.ReadRegularFile(path, 256)
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		return strings.TrimSpace(string(data)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("instance id: %w", err)
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	if err := atomicfile.Write(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("instance id: %w", err)
	}
	return id, nil
}

// newEngine is the orchestration engine over hosts, recording what it
// deploys in st and keeping what generate-artefacts makes, and the VM
// disks, in the data folder.
func newEngine(cfg config.Server, hosts engine.Hosts, st store.Store, log *slog.Logger) *engine.Engine {
	return engine.New(engine.Options{
		Hosts: hosts, Records: records{st}, Logger: log, Impairer: engine.LinkImpairer{},
		GeneratedDir: cfg.GeneratedDir(), DisksDir: cfg.DisksDir(),
	})
}

// agentRoutes is, on a client host, the agent API the main drives (behind
// the member secret): this host's own drivers and network.
func (s *Server) agentRoutes(local *engine.LocalHost) http.Handler {
	return agent.Handler(agent.Options{
		Name: s.host.Name, DataDir: s.cfg.DataDir, Drivers: local.Drivers, Network: local.Net,
		Logger: s.log.With("part", "agent"),
	})
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
