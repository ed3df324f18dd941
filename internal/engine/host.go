package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/vxlan"
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

// TunnelSpec is one VXLAN link joining a switch's bridge on a host to the
// same switch's bridges on its peer hosts. It is a plain value with JSON
// tags, so a remote host can take it over the wire as it is.
type TunnelSpec = vxlan.Spec

// A host's network has optional capabilities beside Network: Tunnels,
// Routers, ACLs and Ports. Each is a small interface that a network
// implements whole (check-and-repair methods included, so a renamed method
// fails the implementation's compile-time guard instead of silently
// turning a check off), found with capability; a network without one (a
// test fake, a host of one) still is a Network, and the engine asks for a
// capability only where the deployment needs it.

// capability returns host h's network as the capability T, or an error
// wrapping missing that names the host.
func capability[T any](h Host, missing error) (T, error) {
	if c, ok := h.Network().(T); ok {
		return c, nil
	}
	var zero T
	return zero, fmt.Errorf("host %s: %w", h.Name(), missing)
}

// Tunnels is the capability of joining bridges across hosts with VXLAN,
// needed on hosts that carry a switch spanning hosts.
type Tunnels interface {
	// EnsureTunnel makes the link if it is missing, enslaved to
	// spec.Bridge, and makes its peers exactly spec.Peers; it reports
	// whether it made the link (only that is undone by a revert).
	EnsureTunnel(ctx context.Context, spec TunnelSpec) (created bool, err error)
	// DeleteTunnel removes the link; a missing one is fine.
	DeleteTunnel(ctx context.Context, name string) error
	// HasTunnel reports whether the link exists.
	HasTunnel(ctx context.Context, name string) (bool, error)
}

// Ports is the capability of telling whether the host ends of guests'
// interfaces (veth peers, taps) are ports of their bridge, and of putting
// them back: a bridge deleted and made again has lost its ports.
type Ports interface {
	// DetachedPorts returns, of ports, those that exist but are not ports
	// of bridge (detached) and those that do not exist (gone).
	DetachedPorts(ctx context.Context, bridge string, ports []string) (detached, gone []string, err error)
	// AttachPorts makes the existing ports ports of bridge again, up.
	AttachPorts(ctx context.Context, bridge string, ports []string) error
}

// ErrNoPorts: the host's network cannot tell where guests' interfaces are.
var ErrNoPorts = errors.New("the host's network cannot check guests' interfaces")

// ErrHostUnreachable: a host of the cluster does not answer, or is no
// longer a member. Drivers and proxies of remote hosts wrap it; down keeps
// what such a host holds recorded and CleanHost removes it later.
var ErrHostUnreachable = errors.New("host unreachable")

// ErrNoTunnels: a switch spans a host whose network cannot make tunnels.
var ErrNoTunnels = errors.New("the host's network cannot make VXLAN tunnels")

// TunnelsOf returns the tunnels of host h's network, or an error wrapping
// ErrNoTunnels.
func TunnelsOf(h Host) (Tunnels, error) { return capability[Tunnels](h, ErrNoTunnels) }

// PortsOf returns the ports capability of host h's network, or an error
// wrapping ErrNoPorts.
func PortsOf(h Host) (Ports, error) { return capability[Ports](h, ErrNoPorts) }

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
	// Generated is the server's folder of generated artefacts
	// (Options.GeneratedDir), where the drivers keep their working files.
	Generated string
}

// Name implements Host.
func (h *LocalHost) Name() string { return h.HostName }

// Network implements Host.
func (h *LocalHost) Network() Network { return h.Net }

// Driver implements Host.
func (h *LocalHost) Driver(kind string) (guest.Driver, error) { return h.Drivers.Driver(kind) }

// Files implements Host: the project folder itself, and the server's own
// folder of what generate-artefacts made.
func (h *LocalHost) Files(project string) guest.Files {
	return guest.ProjectFiles{Project: project, Generated: h.Generated}
}

// guestDeployment is what a driver on host gets to know of deployment dep
// whose project folder is project: its files there, and the host's network
// as a guest.PortBinder when its switches are not Linux bridges.
func guestDeployment(dep string, host Host, project string) guest.Deployment {
	ports, _ := host.Network().(guest.PortBinder)
	return guest.Deployment{Name: dep, Files: host.Files(project), Ports: ports}
}

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

// This host's network has every capability.
var (
	_ Network = (*hostnet.Host)(nil)
	_ Tunnels = (*hostnet.Host)(nil)
	_ Routers = (*hostnet.Host)(nil)
	_ ACLs    = (*hostnet.Host)(nil)
	_ Ports   = (*hostnet.Host)(nil)
	_ LinkOps = (*hostnet.Host)(nil)
)
