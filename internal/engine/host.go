package engine

import (
	"context"
	"fmt"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Network is the network of one host as the engine drives it: Linux bridges
// and the firewall rules that let their ports talk.
type Network interface {
	// HasBridge reports whether a bridge of that name exists.
	HasBridge(ctx context.Context, name string) (bool, error)
	// EnsureBridge makes the bridge if it is missing and reports whether it
	// did.
	EnsureBridge(ctx context.Context, name string) (created bool, err error)
	DeleteBridge(ctx context.Context, name string) error
	// AllowBridge lets traffic between ports of the bridge through the host
	// firewall; RemoveBridge undoes it.
	AllowBridge(ctx context.Context, name string) error
	RemoveBridge(ctx context.Context, name string) error
}

// Host is one machine of the cluster as the engine drives it: its network,
// its guest drivers and the way those reach a deployment's files. This
// machine is one implementation (LocalHost); a client host behind the agent
// API is another.
type Host interface {
	Name() string
	Network() Network
	// Driver returns the driver of a guest kind on this host.
	Driver(kind string) (guest.Driver, error)
	// Files is how this host's drivers reach the files of the deployment
	// whose project folder, on the main, is project.
	Files(project string) guest.Files
}

// Hosts is the cluster as the engine sees it.
type Hosts interface {
	// List is every host guests may be placed on.
	List() []topology.Host
	// Host returns the host called name.
	Host(name string) (Host, error)
}

// LocalHost is this machine: its network and drivers, and the project
// folders on its own disk.
type LocalHost struct {
	HostName string
	Net      Network
	Drivers  *guest.Registry
}

// Name implements Host.
func (h *LocalHost) Name() string { return h.HostName }

// Network implements Host.
func (h *LocalHost) Network() Network { return h.Net }

// Driver implements Host.
func (h *LocalHost) Driver(kind string) (guest.Driver, error) { return h.Drivers.Driver(kind) }

// Files implements Host: the project folder itself.
func (h *LocalHost) Files(project string) guest.Files { return guest.ProjectFiles{Project: project} }

// SingleHost is a cluster of one host, the main.
type SingleHost struct{ Main Host }

// List implements Hosts.
func (s SingleHost) List() []topology.Host {
	return []topology.Host{{Name: s.Main.Name(), Main: true}}
}

// Host implements Hosts.
func (s SingleHost) Host(name string) (Host, error) {
	if name != s.Main.Name() {
		return nil, fmt.Errorf("host %s is not in the cluster (it has only %s)", name, s.Main.Name())
	}
	return s.Main, nil
}
