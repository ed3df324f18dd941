// Package dhcp serves DHCPv4 on routers' ports from goroutines of this
// process, and takes a lease for a guest's interface from inside its
// namespace.
package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

// leaseTime is what leases are given for. Guests take one lease at up and
// keep the address (nothing renews it), so it only matters to guests that
// run a DHCP client of their own.
const leaseTime = 24 * time.Hour

// maxLeases bounds the MACs one pool holds an address for, so a guest
// sending DISCOVERs from random MACs cannot grow the daemon's memory (or
// the scan for a free address) with the size of a large subnet.
const maxLeases = 4096

// offerHold is how long an address offered to a DISCOVER stays that MAC's
// without a REQUEST; after that it may be given to another MAC.
const offerHold = time.Minute

// Servers are the DHCP servers of this process, by router namespace and
// port. The zero value is ready.
type Servers struct {
	mu      sync.Mutex
	running map[string]map[string]*server // namespace → port → server
}

type server struct {
	srv  *server4.Server
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
			srv, err := server4.NewServer(p.IfName, &net.UDPAddr{Port: dhcpv4.ServerPort}, pool.handle)
			ds.srv = srv
			return err
		})
		if err != nil {
			return fmt.Errorf("dhcp on switch %s: %w", p.Switch, err)
		}
		ports[p.IfName] = ds
		go func() {
			defer close(ds.done)
			if err := ds.srv.Serve(); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Warn("dhcp server stopped", "router", r.Name, "switch", p.Switch, "err", err)
			}
		}()
		log.Info("dhcp: serving", "router", r.Name, "switch", p.Switch, "port", p.IfName)
	}
	return nil
}

// Stop ends the servers of a router and waits for them.
func (s *Servers) Stop(ns string) {
	s.mu.Lock()
	ports := s.running[ns]
	delete(s.running, ns)
	s.mu.Unlock()
	for _, ds := range ports {
		ds.srv.Close()
		<-ds.done
	}
}

// leasePool hands out the addresses of a subnet less the excluded range,
// the reserved addresses and the gateway, first free first, one per MAC.
type leasePool struct {
	spec    topology.DHCPPool
	subnet  netip.Prefix
	gateway netip.Addr
	mask    net.IPMask
	first   netip.Addr
	last    netip.Addr
	skip    map[netip.Addr]bool

	now func() time.Time

	mu    sync.Mutex
	byMAC map[string]netip.Addr
	taken map[netip.Addr]string
	// offered are the MACs that DISCOVERed but have not REQUESTed yet,
	// with when they were offered: their addresses are reclaimed once
	// stale (bound leases never are: guests keep their address).
	offered map[string]time.Time
}

func newLeasePool(p topology.DHCPPool, seed map[string]string) (*leasePool, error) {
	subnet, err := netip.ParsePrefix(p.Subnet)
	if err != nil || !subnet.Addr().Is4() {
		return nil, fmt.Errorf("subnet %q is not an IPv4 CIDR", p.Subnet)
	}
	gw, err := netip.ParseAddr(p.Gateway)
	if err != nil {
		return nil, fmt.Errorf("gateway %q: %w", p.Gateway, err)
	}
	lp := &leasePool{
		spec: p, gateway: gw, mask: net.CIDRMask(subnet.Bits(), 32),
		first: subnet.Masked().Addr().Next(), skip: map[netip.Addr]bool{gw: true},
		byMAC: map[string]netip.Addr{}, taken: map[netip.Addr]string{},
		offered: map[string]time.Time{}, now: time.Now,
	}
	lp.last = lastHost(subnet)
	for _, r := range p.Reserved {
		if a, err := netip.ParseAddr(r); err == nil {
			lp.skip[a] = true
		}
	}
	if from, err := netip.ParseAddr(p.ExcludeFrom); err == nil {
		if to, err := netip.ParseAddr(p.ExcludeTo); err == nil {
			for a := from; a.IsValid() && !to.Less(a); a = a.Next() {
				lp.skip[a] = true
			}
		}
	}
	lp.subnet = subnet
	lp.seed(seed)
	return lp, nil
}

// seed gives each MAC the address it held, where that address is in the
// pool and free, and the MAC holds none yet.
func (lp *leasePool) seed(leases map[string]string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for mac, ip := range leases {
		a, err := netip.ParseAddr(ip)
		if err != nil || !lp.subnet.Contains(a) || lp.skip[a] || lp.taken[a] != "" {
			continue
		}
		if _, has := lp.byMAC[mac]; has {
			continue
		}
		lp.byMAC[mac], lp.taken[a] = a, mac
	}
}

func lastHost(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	v-- // not the broadcast address
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// allocate returns the address of mac, giving it the first free one; bind
// (a REQUEST) makes it the MAC's for good, else (a DISCOVER) it is only
// offered. When the pool is full, stale offers are reclaimed.
func (lp *leasePool) allocate(mac string, bind bool) (netip.Addr, bool) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	now := lp.now()
	if a, ok := lp.byMAC[mac]; ok {
		if bind {
			delete(lp.offered, mac)
		} else if _, pending := lp.offered[mac]; pending {
			lp.offered[mac] = now
		}
		return a, true
	}
	a, ok := lp.free()
	if !ok {
		for m, at := range lp.offered {
			if now.Sub(at) > offerHold {
				delete(lp.taken, lp.byMAC[m])
				delete(lp.byMAC, m)
				delete(lp.offered, m)
			}
		}
		if a, ok = lp.free(); !ok {
			return netip.Addr{}, false
		}
	}
	lp.byMAC[mac], lp.taken[a] = a, mac
	if !bind {
		lp.offered[mac] = now
	}
	return a, true
}

// free is the first address no MAC holds, while the pool holds fewer than
// maxLeases.
func (lp *leasePool) free() (netip.Addr, bool) {
	if len(lp.byMAC) >= maxLeases {
		return netip.Addr{}, false
	}
	for a := lp.first; a.IsValid() && !lp.last.Less(a); a = a.Next() {
		if !lp.skip[a] && lp.taken[a] == "" {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// handle answers DISCOVER with an OFFER and REQUEST with an ACK (or a NAK
// for an address that is not the client's).
func (lp *leasePool) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	mac := m.ClientHWAddr.String()
	var kind dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		kind = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		kind = dhcpv4.MessageTypeAck
	default:
		return
	}
	addr, ok := lp.allocate(mac, kind == dhcpv4.MessageTypeAck)
	if !ok {
		return // the pool is exhausted: stay silent, as servers do
	}
	if kind == dhcpv4.MessageTypeAck {
		want := m.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = m.ClientIPAddr
		}
		if w, ok := netip.AddrFromSlice(want.To4()); ok && w != addr {
			kind = dhcpv4.MessageTypeNak
		}
	}
	gw := net.IP(lp.gateway.AsSlice())
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(kind), dhcpv4.WithServerIP(gw),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(gw))}
	if kind != dhcpv4.MessageTypeNak {
		mods = append(mods, dhcpv4.WithYourIP(net.IP(addr.AsSlice())), dhcpv4.WithNetmask(lp.mask),
			dhcpv4.WithRouter(gw), dhcpv4.WithLeaseTime(uint32(leaseTime/time.Second)))
	}
	reply, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		return
	}
	_, _ = conn.WriteTo(reply.ToBytes(), peer)
}

// requestLease runs a DHCP exchange on ifname inside the namespace at
// nsPath: the client's raw socket is made there.
func requestLease(ctx context.Context, nsPath, ifname string) (lease, error) {
	var c *nclient4.Client
	err := namespace.In(nsPath, func() error {
		var err error
		c, err = nclient4.New(ifname, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(5))
		return err
	})
	if err != nil {
		return lease{}, fmt.Errorf("dhcp client on %s: %w", ifname, err)
	}
	defer c.Close()
	l, err := c.Request(ctx)
	if err != nil {
		return lease{}, fmt.Errorf("dhcp on %s: %w", ifname, err)
	}
	ip, ok := netip.AddrFromSlice(l.ACK.YourIPAddr.To4())
	if !ok {
		return lease{}, fmt.Errorf("dhcp on %s: the server gave no address", ifname)
	}
	ones, _ := l.ACK.SubnetMask().Size()
	if l.ACK.SubnetMask() == nil {
		ones = 32
	}
	out := lease{addr: netip.PrefixFrom(ip, ones)}
	if rs := l.ACK.Router(); len(rs) > 0 {
		out.router, _ = netip.AddrFromSlice(rs[0].To4())
	}
	return out, nil
}

// applyLease sets the leased address and the default route in the
// namespace; both may be there already (a lease taken again).
func applyLease(nsPath, ifname string, l lease) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s: %w", ifname, err)
	}
	addr, err := netlink.ParseAddr(l.addr.String())
	if err != nil {
		return err
	}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", l.addr, ifname, err)
	}
	if l.router.IsValid() {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(l.router.AsSlice())}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("default route via %s on %s: %w", l.router, ifname, err)
		}
	}
	return nil
}

// Lease asks the DHCP server on ifname's switch for an address from inside
// the namespace mounted at nsPath, and sets the address and a default route
// via the lease's router there. It returns the address as CIDR.
func Lease(ctx context.Context, nsPath, ifname string) (addr, router string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := requestLease(ctx, nsPath, ifname)
	if err != nil {
		return "", "", err
	}
	if err := applyLease(nsPath, ifname, l); err != nil {
		return "", "", err
	}
	gw := ""
	if l.router.IsValid() {
		gw = l.router.String()
	}
	return l.addr.String(), gw, nil
}

type lease struct {
	addr   netip.Prefix
	router netip.Addr
}

// Serving reports whether a server runs on port ifname of the router whose
// namespace is given.
func (s *Servers) Serving(ns, ifname string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[ns][ifname] != nil
}
