package server

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/topology"
)

// clusterHosts is the cluster as the main's engine drives it: this host,
// and every joined client through its agent API over TLS pinned to the
// client's certificate, with its member secret.
type clusterHosts struct {
	main   *engine.LocalHost
	mainIP string
	// The main's size (host.json), for load_balancing: resources.
	mainCPUs     int
	mainMemoryMB int64
	members      *cluster.Members
	own          *Server

	mu      sync.Mutex
	remotes map[string]remoteEntry // by member name
	// hashes are the sha256 of pushed files, shared by every member's
	// proxy: a file is hashed once for all of them.
	hashes *agent.Hashes
}

// remoteEntry is a member's proxy, made again when the member re-joined
// with another secret, certificate or address.
type remoteEntry struct {
	peer cluster.Peer
	host *agent.RemoteHost
}

var _ engine.Hosts = (*clusterHosts)(nil)

// List implements engine.Hosts: the main first, then the members by name.
func (c *clusterHosts) List() []topology.Host {
	out := []topology.Host{{Name: c.main.Name(), Main: true, IP: c.mainIP, CPUs: c.mainCPUs, MemoryMB: c.mainMemoryMB}}
	members := c.members.List()
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	for _, m := range members {
		out = append(out, topology.Host{Name: m.Name, IP: m.Host.IP, CPUs: m.Host.CPUs, MemoryMB: m.Host.MemoryMB})
	}
	return out
}

// Host implements engine.Hosts.
func (c *clusterHosts) Host(name string) (engine.Host, error) {
	if name == c.main.Name() {
		return c.main, nil
	}
	peer, ok := c.members.Peer(name)
	if !ok {
		return nil, fmt.Errorf("host %s is not in the cluster (it left, or was lost: see kvm-compose cluster status): %w", name, engine.ErrHostUnreachable)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.remotes[name]; ok && e.peer.Secret == peer.Secret && e.peer.Fingerprint == peer.Fingerprint && e.peer.URL == peer.URL {
		return e.host, nil
	}
	client := cluster.PinnedClient(peer.Fingerprint, &c.own.identity.Certificate)
	if c.hashes == nil {
		c.hashes = agent.NewHashes()
	}
	h, err := agent.NewRemoteHost(agent.RemoteOptions{
		Name: name, BaseURL: peer.URL, Secret: peer.Secret, Client: client, Timeout: 30 * time.Second,
		Generated: c.main.Generated, Images: c.own.images, Hashes: c.hashes,
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	if c.remotes == nil {
		c.remotes = map[string]remoteEntry{}
	}
	c.remotes[name] = remoteEntry{peer: peer, host: h}
	return h, nil
}
