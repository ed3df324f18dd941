package dhcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

// maxPerSecond bounds the requests one server answers per second; the
// rest are read and dropped, so a guest flooding DISCOVERs costs at most a
// share of one goroutine.
const maxPerSecond = 2000

// Servers are the DHCP servers of this process, by router namespace and
// port. The zero value is ready.
type Servers struct {
	mu      sync.Mutex
	running map[string]map[string]*server // namespace → port → server
}

// server is one port's server: one goroutine that reads a request,
// answers it and only then reads the next (server4.Server starts a
// goroutine per packet, which a flood piles up without bound, and which
// go on after the socket is closed). Closing conn ends it.
type server struct {
	conn *net.UDPConn
	pool *leasePool
	done chan struct{}
}

// Serve starts a server for every DHCP pool of r that has none; leases
// (MAC → address) seed the pools, so a restarted server hands out what it
// did before. The pools of servers already running take the leases too
// (where the address is free), so a router made again and served at once
// keeps its guests' addresses.
func (s *Servers) Serve(r topology.Router, leases map[string]string, log *slog.Logger) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]map[string]*server{}
	}
	ports := s.running[r.Namespace]
	if ports == nil {
		ports = map[string]*server{}
		s.running[r.Namespace] = ports
	}
	for _, p := range r.DHCP {
		if ds := ports[p.IfName]; ds != nil {
			ds.pool.seed(leases)
			continue
		}
		pool, err := newLeasePool(p, leases)
		if err != nil {
			return fmt.Errorf("dhcp on switch %s: %w", p.Switch, err)
		}
		ds := &server{pool: pool, done: make(chan struct{})}
		// The socket is made inside the router, bound to the port.
		err = namespace.In(namespace.Path(r.Namespace), func() error {
			conn, err := server4.NewIPv4UDPConn(p.IfName, &net.UDPAddr{Port: dhcpv4.ServerPort})
			ds.conn = conn
			return err
		})
		if err != nil {
			return fmt.Errorf("dhcp on switch %s: %w", p.Switch, err)
		}
		ports[p.IfName] = ds
		go ds.serve(log.With("router", r.Name, "switch", p.Switch))
		log.Info("dhcp: serving", "router", r.Name, "switch", p.Switch, "port", p.IfName)
	}
	return nil
}

// serve answers requests until the socket is closed.
func (ds *server) serve(log *slog.Logger) {
	defer close(ds.done)
	buf := make([]byte, 4096)
	var window time.Time
	answered := 0
	for {
		n, peer, err := ds.conn.ReadFromUDP(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Warn("dhcp server stopped", "err", err)
			}
			return
		}
		if now := time.Now(); now.Sub(window) >= time.Second {
			window, answered = now, 0
		}
		if answered++; answered > maxPerSecond {
			continue
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		// A client without an address is answered by broadcast.
		if peer.IP == nil || peer.IP.To4().Equal(net.IPv4zero) {
			peer = &net.UDPAddr{IP: net.IPv4bcast, Port: peer.Port}
		}
		ds.pool.handle(ds.conn, peer, m)
	}
}

// Stop ends the servers of a router and waits for them: when it returns,
// their sockets are closed and none of their goroutines is left.
func (s *Servers) Stop(ns string) {
	s.mu.Lock()
	ports := s.running[ns]
	delete(s.running, ns)
	s.mu.Unlock()
	for _, ds := range ports {
		ds.conn.Close()
		<-ds.done
	}
}

// Serving reports whether a server runs on port ifname of the router whose
// namespace is given.
func (s *Servers) Serving(ns, ifname string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[ns][ifname] != nil
}
