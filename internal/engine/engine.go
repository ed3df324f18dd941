// Package engine is the orchestration library: it turns kvm-compose.yaml into
// a resolved state (generate-artefacts) and brings that state up and down in
// ordered stages, each doing its resources concurrently.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// ErrConflict: the command does not fit the deployment's current state (for
// example up before generate-artefacts).
var ErrConflict = api.Categorized(api.ErrConflict, "conflicts with the deployment's state")

// Options configure an Engine.
type Options struct {
	// Hosts is the cluster the engine drives. When nil, the engine drives
	// one LocalHost named HostName with Drivers and Network.
	Hosts    Hosts
	HostName string
	Drivers  *guest.Registry
	Network  Network
	// Backend is the network backend, BackendBridge (the default) or
	// BackendOVN: it chooses the network kinds up, down, apply and plan go
	// through.
	Backend string
	// Records keeps what each deployment has deployed; nil keeps it in
	// memory (tests).
	Records Records
	Logger  *slog.Logger
	// Impairer changes link impairments in place during apply; nil re-makes
	// a guest whose impairments changed.
	Impairer Impairer
	// Concurrency bounds the resources one stage works on at once.
	Concurrency int
	// GeneratedDir is the server's own folder of what generate-artefacts
	// makes, one folder per deployment (<data>/generated/<name>): up,
	// apply, plan and restore read only that; the project's artefacts/
	// gets a copy for the user, never read back. Empty: a folder of this
	// process under the system's temporary folder (tests).
	GeneratedDir string
	// DisksDir is where the drivers keep the deployments' VM disks, one
	// folder per deployment (<data>/disks/<name>, the libvirt driver's
	// DisksDir), which clear-artefacts removes. Empty: none to remove.
	DisksDir string
	// ImageDirs are the folders outside a project that its disks and ISOs
	// may lie under; nil: topology.DefaultImageDirs("").
	ImageDirs []string
	// ProviderNetworks are the main host's provider networks (name → the
	// host's address on it, CIDR); nil: topology.DefaultProviderNetworks().
	ProviderNetworks map[string]string
	// DestroyConcurrency bounds the guests down destroys at once. Destroys
	// mostly wait for the kernel, and the netns driver deletes the veths
	// of concurrent ones in one batch, so all at once is fastest: 200
	// netns guests go down in 0.9× the time of an ip -batch script with
	// everything at once, 1.25× in batches of 64. Default 1024.
	DestroyConcurrency int
	// HostsFile is the hosts file that the names of management networks go
	// into (names.go); default DefaultHostsFile.
	HostsFile string
}

// Engine executes orchestration commands. It implements actions.Executor.
type Engine struct {
	opts Options
	// vniMu makes choosing and recording VNIs one deployment at a time.
	vniMu sync.Mutex
	// impMu makes run-time impairment changes (record, then link) one at a
	// time.
	impMu sync.Mutex
}

// New returns an engine.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = max(8, 4*runtime.NumCPU())
	}
	if opts.HostsFile == "" {
		opts.HostsFile = DefaultHostsFile
	}
	if opts.DestroyConcurrency <= 0 {
		opts.DestroyConcurrency = 1024
	}
	if opts.GeneratedDir == "" {
		opts.GeneratedDir = filepath.Join(os.TempDir(), fmt.Sprintf("testbedos-%d", os.Getpid()), "generated")
	}
	if opts.Hosts == nil {
		name := opts.HostName
		if name == "" {
			name = "localhost"
		}
		opts.Hosts = SingleHost{Main: &LocalHost{HostName: name, Net: opts.Network, Drivers: opts.Drivers, Generated: opts.GeneratedDir}}
	}
	if opts.Records == nil {
		opts.Records = &MemoryRecords{}
	}
	return &Engine{opts: opts}
}

// Check refuses, before anything is recorded, a command that cannot succeed:
// an invalid kvm-compose.yaml (topology.ErrInvalid), a command that does
// not fit the current state (ErrConflict), a snapshot of an unknown guest
// (ErrNotFound) or of a kind without snapshots (ErrUnsupported).
func (e *Engine) Check(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command) error {
	switch cmd.Name {
	case api.CmdGenerateArtefacts, api.CmdClearArtefacts:
		if err := e.checkNothingDeployed(ctx, d, cmd.Name); err != nil {
			return err
		}
		if cmd.Name == api.CmdGenerateArtefacts {
			_, err := topology.Generate(e.topologyOptions(d))
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %v: the project folder no longer holds kvm-compose.yaml (restore it, or PUT another project_location)", ErrConflict, err)
			}
			return err
		}
	case api.CmdUp:
		st, err := e.readState(d)
		if err != nil {
			return err
		}
		if err := e.checkExternalOverlap(ctx, d.Name, st); err != nil {
			return err
		}
		if cmd.Up.Timeline && (st.Timeline == nil || len(st.Timeline.Changes) == 0) {
			return fmt.Errorf("%w: deployment %s: kvm-compose.yaml has no timeline for up --timeline", ErrNoTimeline, d.Name)
		}
		return e.checkCapabilities(st)
	case api.CmdApply:
		return e.checkApply(ctx, d, prev)
	case api.CmdSnapshot:
		// An unknown guest or one of a kind without snapshots is refused
		// here, before the action is recorded.
		_, err := e.snapshotTarget(d, cmd.Snapshot.Guest)
		return err
	case api.CmdPower:
		return e.checkPower(ctx, d, prev, cmd.Power)
	case api.CmdTimeline:
		return e.checkTimeline(d, prev)
	}
	return nil
}

// readState reads and checks the state generate-artefacts wrote for d in
// the server's own folder (never the project's copy). A state that does
// not match the deployment, or names a file where none may be, is refused.
func (e *Engine) readState(d api.Deployment) (*topology.State, error) {
	st, err := topology.ReadState(e.statePath(d.Name))
	if errors.Is(err, fs.ErrNotExist) {
		if _, cerr := os.Lstat(topology.StatePath(d.ProjectLocation)); cerr == nil {
			// Generated by an older server, which kept the state in the
			// project only.
			return nil, fmt.Errorf("%w: deployment %s has no generated state in the server's data folder (the project's artefacts/ is only a copy for reading): run generate-artefacts, after down if anything is deployed", ErrConflict, d.Name)
		}
		return nil, fmt.Errorf("%w: deployment %s has no artefacts yet: run generate-artefacts first", ErrConflict, d.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("read artefacts: %w", err)
	}
	if err := topology.CheckState(st, d.Name, d.ProjectLocation, e.opts.ImageDirs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return st, nil
}

// checkNothingDeployed refuses to change the artefacts while the record
// holds objects of the deployment.
func (e *Engine) checkNothingDeployed(ctx context.Context, d api.Deployment, cmd api.CommandName) error {
	rec, err := e.Deployed(ctx, d.Name)
	if err != nil {
		return err
	}
	if !rec.empty() {
		return fmt.Errorf("%w: deployment %s has %s deployed; run down before %s",
			ErrConflict, d.Name, rec.summary(), cmd)
	}
	return nil
}

func (e *Engine) topologyOptions(d api.Deployment) topology.Options {
	return topology.Options{Deployment: d.Name, ProjectDir: d.ProjectLocation, Hosts: e.opts.Hosts.List(), ImageDirs: e.opts.ImageDirs,
		ProviderNetworks: e.opts.ProviderNetworks, OVN: e.opts.Backend == BackendOVN}
}

// Execute runs cmd; it implements actions.Executor.
func (e *Engine) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	if err := e.Check(ctx, d, prev, cmd); err != nil && cmd.Name != api.CmdGenerateArtefacts {
		return prev, err
	}
	switch cmd.Name {
	case api.CmdGenerateArtefacts:
		return api.StateIsDown, e.GenerateArtefacts(ctx, d, log)
	case api.CmdClearArtefacts:
		return api.StateIsDown, e.ClearArtefacts(ctx, d, log)
	case api.CmdUp:
		if err := e.Up(ctx, d, cmd.Up, log); err != nil || !cmd.Up.Timeline {
			return api.StateIsUp, err
		}
		return api.StateIsUp, e.Timeline(ctx, asUp(d), api.TimelineOptions{}, log)
	case api.CmdDown:
		return api.StateIsDown, e.Down(ctx, d, log)
	case api.CmdApply:
		return api.StateIsUp, e.Apply(ctx, d, log)
	case api.CmdSnapshot:
		return prev, e.Snapshot(ctx, d, cmd.Snapshot, log)
	case api.CmdPower:
		return prev, e.Power(ctx, asUp(d), cmd.Power, log)
	case api.CmdTimeline:
		return prev, e.Timeline(ctx, asUp(d), cmd.Timeline, log)
	}
	return prev, fmt.Errorf("unknown command %q", cmd.Name)
}

// GenerateArtefacts validates kvm-compose.yaml and writes the per-guest
// artefacts and the state into the server's folder of the deployment, with
// a copy in the project's artefacts/ for the user (see writeGenerated).
func (e *Engine) GenerateArtefacts(ctx context.Context, d api.Deployment, log actlog.Log) error {
	if err := e.checkNothingDeployed(ctx, d, api.CmdGenerateArtefacts); err != nil {
		return err
	}
	opts := e.topologyOptions(d)
	log.Printf("reading %s", filepath.Join(d.ProjectLocation, "kvm-compose.yaml"))
	st, err := topology.Generate(opts)
	if err != nil {
		return err
	}
	return e.writeGenerated(ctx, d, st, log)
}
