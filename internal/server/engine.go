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
	"time"

	"github.com/testbedos/testbedos/internal/actions"
	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/docker"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/images"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/topology"
)

// newLocalHost assembles this host as the engine drives it: its network
// (netlink bridges, or with the ovn backend OVN and the integration bridge)
// and every guest kind, registered here in one list. closeNet stops what
// the network started (the OVS/OVN daemons).
func newLocalHost(ctx context.Context, cfg config.Server, host api.HostConfig, join *api.OVNJoin, imgs *images.Store, log *slog.Logger) (local *engine.LocalHost, closeNet func(), err error) {
	hostName := host.Name
	instance, err := instanceID(cfg.InstanceIDPath())
	if err != nil {
		return nil, nil, err
	}
	net, closeNet, err := hostNetwork(ctx, cfg, host, join, log)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			closeNet()
		}
	}()
	lv := libvirt.Options{
		Socket: cfg.Libvirt.Socket, DomainType: cfg.Libvirt.DomainType, ProbeKernel: cfg.Libvirt.ProbeKernel,
		ReadyTimeout: cfg.Libvirt.ReadyTimeout, Logger: log,
		Instance: instance, DisksDir: cfg.DisksDir(), ImageCache: imageCacheDir(cfg),
		ImagesDir: filepath.Join(cfg.DataDir, "images"), Images: imgs,
	}
	// The docker client contacts dockerd only when a docker guest is used:
	// a host without one starts, and such guests fail naming the daemon.
	dk, err := docker.New(docker.Options{Instance: instance, MountsDir: cfg.MountsDir()})
	if err != nil {
		return nil, nil, err
	}
	return &engine.LocalHost{
		HostName:  hostName,
		Generated: cfg.GeneratedDir(),
		Net:       net,
		Drivers: guest.NewRegistry(
			netns.New(netns.Options{}),
			libvirt.New(lv),
			dk,
		),
	}, closeNet, nil
}

// hostNetwork is this host's network for the configured backend: with ovn
// the host's own OVS and OVN when they run, else daemons the server starts
// under <data>/ovn and stops with closeNet. A member of a cluster whose
// main runs ovn (join) is a chassis of the main's OVN (ovncluster.go).
func hostNetwork(ctx context.Context, cfg config.Server, hc api.HostConfig, join *api.OVNJoin, log *slog.Logger) (engine.Network, func(), error) {
	host := hostnet.NewHost(log)
	if join != nil {
		return chassisNetwork(ctx, cfg, hc, join, host, log)
	}
	if cfg.Network != config.NetworkOVN {
		return host, func() {}, nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	mappings := map[string]string{}
	for name, m := range hc.ProviderNetworks() {
		mappings[name] = m.Bridge
	}
	o := ovn.Options{Dir: cfg.OVNDir(), Chassis: hc.Name, Logger: log.With("part", "ovn"), BridgeMappings: mappings}
	if err := ovnMainOptions(cfg, hc, &o); err != nil {
		return nil, nil, fmt.Errorf("ovn: %w", err)
	}
	n, err := ovn.Open(sctx, o)
	if err != nil {
		return nil, nil, err
	}
	log.Info("network backend ovn", "chassis", n.Chassis(), "own_daemons", n.Own(), "run_dir", n.RunDir(),
		"datapath", ifElse(n.Userspace(), "userspace (netdev)", "kernel"), "southbound_for_members", o.SBListen)
	return &ovn.Host{Host: host, OVN: n}, n.Close, nil
}

// chassisNetwork is a member's network when the main runs ovn: its own
// Open vSwitch and ovn-controller, joined to the main's southbound
// database over SSL.
func chassisNetwork(ctx context.Context, cfg config.Server, hc api.HostConfig, join *api.OVNJoin, host *hostnet.Host, log *slog.Logger) (engine.Network, func(), error) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	o, err := ovnChassisOptions(cfg, hc, join, log.With("part", "ovn"))
	if err != nil {
		return nil, nil, fmt.Errorf("ovn chassis: %w", err)
	}
	n, err := ovn.OpenChassis(sctx, o, join.Southbound)
	if err != nil {
		return nil, nil, err
	}
	log.Info("ovn chassis of the main's OVN", "chassis", n.Chassis(), "southbound", join.Southbound, "encap_ip", o.EncapIP,
		"datapath", ifElse(n.Userspace(), "userspace (netdev)", "kernel"))
	return &ovn.Host{Host: host, OVN: n}, n.Close, nil
}

func ifElse(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// imageStore is the server's VM image cache, where the libvirt driver
// keeps its images (TESTBEDOS_LIBVIRT_IMAGE_CACHE, default
// <data>/cache/images; the original's <data>/images/<name>.img taken in).
func imageStore(cfg config.Server) (*images.Store, error) {
	return images.New(images.Options{Dir: imageCacheDir(cfg), Legacy: filepath.Join(cfg.DataDir, "images"), DisksDir: cfg.DisksDir()}), nil
}

// imageCacheDir is the libvirt driver's image cache: the configured one,
// else <data>/cache/images.
func imageCacheDir(cfg config.Server) string {
	if cfg.Libvirt.ImageCache != "" {
		return cfg.Libvirt.ImageCache
	}
	return filepath.Join(cfg.DataDir, "cache", "images")
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
// The engine serves every optional part of the server's executor (a test's
// fake executor may serve fewer, so the server asks for each): a renamed
// method fails the build here instead of silently turning a route, the
// restore or the clean-up off.
var (
	_ actions.Executor  = (*engine.Engine)(nil)
	_ httpapi.Snapshots = (*engine.Engine)(nil)
	_ httpapi.Planner   = (*engine.Engine)(nil)
	_ httpapi.Guests    = (*engine.Engine)(nil)
	_ httpapi.Live      = (*engine.Engine)(nil)
	_ hostCleaner       = (*engine.Engine)(nil)
	_ restorer          = (*engine.Engine)(nil)
	_ resumer           = (*engine.Engine)(nil)
)

// resumer starts again, at the server's start, what of the recorded
// deployments runs in this process (DHCP servers, userspace impairments).
type resumer interface {
	Resume(ctx context.Context) error
}

func newEngine(cfg config.Server, host api.HostConfig, hosts engine.Hosts, st store.Store, log *slog.Logger) *engine.Engine {
	providers := map[string]string{}
	for name, m := range host.ProviderNetworks() {
		providers[name] = m.Gateway
	}
	return engine.New(engine.Options{
		Hosts: hosts, Records: records{st}, Logger: log, Impairer: engine.LinkImpairer{},
		GeneratedDir: cfg.GeneratedDir(), DisksDir: cfg.DisksDir(), ImageDirs: cfg.ImageFolders(),
		ProviderNetworks: providers,
		Backend:          cfg.Network,
	})
}

// agentRoutes is, on a client host, the agent API the main drives (behind
// the member secret): this host's own drivers and network.
// The impairments the main set here that ran in the previous process
// (kernels without netem) are set again first.
func (s *Server) agentRoutes(ctx context.Context, local *engine.LocalHost) http.Handler {
	opts := agent.Options{
		Name: s.host.Name, DataDir: s.cfg.DataDir, Drivers: local.Drivers, Network: local.Net,
		Images: s.images, Logger: s.log.With("part", "agent"),
	}
	if err := agent.ResumeImpairments(ctx, opts); err != nil {
		opts.Logger.Warn("could not set again every impairment of this host's guests", "err", err)
	}
	return agent.Handler(opts)
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
