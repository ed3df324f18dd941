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

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// ErrConflict: the command does not fit the deployment's current state (for
// example up before generate-artefacts).
var ErrConflict = errors.New("conflicts with the deployment's state")

// Network makes the switches of one host.
type Network interface {
	// EnsureBridge makes the bridge if it is missing and reports whether it
	// did.
	EnsureBridge(ctx context.Context, name string) (created bool, err error)
	DeleteBridge(ctx context.Context, name string) error
	// AllowBridge lets traffic between ports of the bridge through the host
	// firewall; RemoveBridge undoes it.
	AllowBridge(name string) error
	RemoveBridge(name string) error
}

// Options configure an Engine.
type Options struct {
	Drivers *guest.Registry
	Network Network
	Logger  *slog.Logger
	// Hosts lists the cluster hosts guests may be placed on; nil means this
	// host alone.
	Hosts func() []topology.Host
	// Concurrency bounds the resources one stage works on at once.
	Concurrency int
	// DestroyConcurrency bounds the guests down destroys at once. Destroys
	// mostly wait for the kernel, and the netns driver deletes the veths
	// of concurrent ones in one batch, so more at once is much faster.
	// Default 64.
	DestroyConcurrency int
}

// Engine executes orchestration commands. It implements actions.Executor.
type Engine struct {
	opts Options
}

// New returns an engine.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = max(8, 4*runtime.NumCPU())
	}
	if opts.DestroyConcurrency <= 0 {
		opts.DestroyConcurrency = 64
	}
	if opts.Hosts == nil {
		opts.Hosts = func() []topology.Host { return []topology.Host{LocalHost()} }
	}
	return &Engine{opts: opts}
}

// LocalHost is this machine as the main host.
func LocalHost() topology.Host {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	return topology.Host{Name: name, Main: true}
}

// Check refuses, before anything is recorded, a command that cannot succeed:
// an invalid kvm-compose.yaml (topology.ErrInvalid), or a command that does
// not fit the current state (ErrConflict).
func (e *Engine) Check(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command) error {
	statePath := topology.StatePath(d.ProjectLocation)
	switch cmd.Name {
	case api.CmdGenerateArtefacts, api.CmdClearArtefacts:
		if mayBeDeployed(prev) {
			return fmt.Errorf("%w: deployment %s is %s; run down before %s (the artefacts describe what is deployed)", ErrConflict, d.Name, prev, cmd.Name)
		}
		if cmd.Name == api.CmdGenerateArtefacts {
			_, err := topology.Generate(e.topologyOptions(d))
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %v: the project folder no longer holds kvm-compose.yaml (restore it, or PUT another project_location)", ErrConflict, err)
			}
			return err
		}
	case api.CmdUp, api.CmdSnapshot:
		if _, err := os.Stat(statePath); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: deployment %s has no artefacts yet: run generate-artefacts first", ErrConflict, d.Name)
		}
	}
	return nil
}

// mayBeDeployed reports whether guests or switches of the deployment may
// exist in the state prev.
func mayBeDeployed(prev api.DeploymentState) bool {
	switch {
	case prev.Is(api.StateUp), prev.Is(api.StateRunning):
		return true
	case prev.Is(api.StateFailed) && prev.Failed != nil:
		switch prev.Failed.Name {
		case api.CmdGenerateArtefacts, api.CmdClearArtefacts:
			return false
		}
		return true
	}
	return false
}

func (e *Engine) topologyOptions(d api.Deployment) topology.Options {
	return topology.Options{Deployment: d.Name, ProjectDir: d.ProjectLocation, Hosts: e.opts.Hosts()}
}

// Execute runs cmd; it implements actions.Executor.
func (e *Engine) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log guest.Log) (api.DeploymentState, error) {
	if err := e.Check(ctx, d, prev, cmd); err != nil && cmd.Name != api.CmdGenerateArtefacts {
		return prev, err
	}
	switch cmd.Name {
	case api.CmdGenerateArtefacts:
		return api.StateIsDown, e.GenerateArtefacts(ctx, d, prev, log)
	case api.CmdClearArtefacts:
		return api.StateIsDown, e.ClearArtefacts(ctx, d, log)
	case api.CmdUp:
		return api.StateIsUp, e.Up(ctx, d, cmd.Up, log)
	case api.CmdDown:
		return api.StateIsDown, e.Down(ctx, d, prev, log)
	case api.CmdSnapshot:
		return prev, e.Snapshot(ctx, d, cmd.Snapshot, log)
	}
	return prev, fmt.Errorf("unknown command %q", cmd.Name)
}

// GenerateArtefacts validates kvm-compose.yaml and writes artefacts/state.json.
func (e *Engine) GenerateArtefacts(ctx context.Context, d api.Deployment, prev api.DeploymentState, log guest.Log) error {
	if mayBeDeployed(prev) {
		return fmt.Errorf("%w: deployment %s is %s; run down first", ErrConflict, d.Name, prev)
	}
	opts := e.topologyOptions(d)
	log.Printf("reading %s", filepath.Join(d.ProjectLocation, "kvm-compose.yaml"))
	st, err := topology.Generate(opts)
	if err != nil {
		return err
	}
	path := topology.StatePath(d.ProjectLocation)
	if err := topology.WriteState(path, st); err != nil {
		return err
	}
	if err := e.writeArtefacts(ctx, st, filepath.Dir(path), log); err != nil {
		return err
	}
	log.Printf("resolved %s on %s over %s", count(len(st.Guests), "guest"), count(len(st.Switches), "switch"), count(len(st.Hosts), "host"))
	for _, sw := range st.Switches {
		log.Printf("switch %s %s: bridge %s", sw.Name, sw.Subnet, sw.Bridge)
	}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			log.Printf("guest %s (%s on %s): %s %s %s on %s via %s", g.Name, g.Kind, g.Host, ifc.Name, ifc.Address, ifc.MAC, ifc.Switch, ifc.HostName)
		}
	}
	log.Printf("wrote %s", path)
	return nil
}

// ClearArtefacts removes the artefacts folder.
func (e *Engine) ClearArtefacts(ctx context.Context, d api.Deployment, log guest.Log) error {
	dir := filepath.Dir(topology.StatePath(d.ProjectLocation))
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		log.Printf("%s does not exist: nothing to clear", dir)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear artefacts: %w", err)
	}
	log.Printf("removed %s", dir)
	return nil
}
