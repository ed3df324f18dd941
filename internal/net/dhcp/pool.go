// Package dhcp serves DHCPv4 on routers' ports from goroutines of this
// process, and takes a lease for a guest's interface from inside its
// namespace.
package dhcp

import (
	"container/heap"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

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

// reclaimEvery bounds how often a full pool looks for stale offers, so a
// flood of DISCOVERs into a full pool costs little per packet.
const reclaimEvery = time.Second

// leasePool hands out the addresses of a subnet less the excluded range,
// the reserved addresses and the gateway, first free first, one per MAC.
// Addresses are uint32s; the excluded range is kept as its two ends, so
// neither memory nor the work per packet grows with the subnet's size.
type leasePool struct {
	spec    topology.DHCPPool
	subnet  netip.Prefix
	gateway netip.Addr
	mask    net.IPMask
	// first and last are the subnet's host addresses (no network, no
	// broadcast address).
	first, last uint32
	// excludeLo..excludeHi is never leased (empty when lo > hi).
	excludeLo, excludeHi uint32
	// reserved are the gateway and the pool's Reserved addresses.
	reserved map[uint32]bool

	now func() time.Time

	mu    sync.Mutex
	byMAC map[string]uint32
	taken map[uint32]string
	// offered are the MACs that DISCOVERed but have not REQUESTed yet,
	// with when they were offered: their addresses are reclaimed once
	// stale (bound leases never are: guests keep their address).
	offered map[string]time.Time
	// next is where the scan for a never-leased address goes on; the free
	// addresses below it are in freed (a min-heap; entries are checked
	// when taken out, so one taken again meanwhile is skipped).
	next        uint64
	freed       addrHeap
	lastReclaim time.Time
}

func newLeasePool(p topology.DHCPPool, seed map[string]string) (*leasePool, error) {
	subnet, err := netip.ParsePrefix(p.Subnet)
	if err != nil || !subnet.Addr().Is4() {
		return nil, fmt.Errorf("subnet %q is not an IPv4 CIDR", p.Subnet)
	}
	subnet = subnet.Masked()
	gw, err := netip.ParseAddr(p.Gateway)
	if err != nil || !gw.Is4() {
		return nil, fmt.Errorf("gateway %q: not an IPv4 address", p.Gateway)
	}
	network := u32(subnet.Addr())
	broadcast := network | uint32(uint64(1)<<(32-subnet.Bits())-1)
	lp := &leasePool{
		spec: p, subnet: subnet, gateway: gw, mask: net.CIDRMask(subnet.Bits(), 32),
		first: network + 1, last: broadcast - 1,
		excludeLo: 1, excludeHi: 0,
		reserved: map[uint32]bool{u32(gw): true},
		byMAC:    map[string]uint32{}, taken: map[uint32]string{},
		offered: map[string]time.Time{}, now: time.Now,
	}
	if subnet.Bits() >= 31 {
		lp.first, lp.last = 1, 0 // no host addresses to lease
	}
	lp.next = uint64(lp.first)
	for _, r := range p.Reserved {
		if a, err := netip.ParseAddr(r); err == nil && a.Is4() {
			lp.reserved[u32(a)] = true
		}
	}
	from, errFrom := netip.ParseAddr(p.ExcludeFrom)
	to, errTo := netip.ParseAddr(p.ExcludeTo)
	if errFrom == nil && errTo == nil && from.Is4() && to.Is4() {
		lp.excludeLo, lp.excludeHi = u32(from), u32(to)
	}
	lp.seed(seed)
	return lp, nil
}

// u32 is an IPv4 address as a number; addr is its inverse.
func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// leasable reports whether a is one of the pool's addresses at all.
func (lp *leasePool) leasable(a uint32) bool {
	return a >= lp.first && a <= lp.last && !lp.reserved[a] && (a < lp.excludeLo || a > lp.excludeHi)
}

// seed gives each MAC the address it held, where that address is in the
// pool and free, and the MAC holds none yet.
func (lp *leasePool) seed(leases map[string]string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	for mac, ip := range leases {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() || !lp.leasable(u32(a)) || lp.taken[u32(a)] != "" {
			continue
		}
		if _, has := lp.byMAC[mac]; has {
			continue
		}
		lp.byMAC[mac], lp.taken[u32(a)] = u32(a), mac
	}
}

// allocate returns the address of mac, giving it the first free one; bind
// (a REQUEST) makes it the MAC's for good, else (a DISCOVER) it is only
// offered. When the pool is full, stale offers are reclaimed, at most once
// every reclaimEvery.
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
		return addr(a), true
	}
	a, ok := lp.free()
	if !ok {
		if now.Sub(lp.lastReclaim) < reclaimEvery {
			return netip.Addr{}, false
		}
		lp.lastReclaim = now
		for m, at := range lp.offered {
			if now.Sub(at) > offerHold {
				lp.release(m)
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
	return addr(a), true
}

// release gives mac's address back to the pool.
func (lp *leasePool) release(mac string) {
	a, ok := lp.byMAC[mac]
	if !ok {
		return
	}
	delete(lp.taken, a)
	delete(lp.byMAC, mac)
	delete(lp.offered, mac)
	if uint64(a) < lp.next {
		heap.Push(&lp.freed, a)
	}
}

// free is the lowest address no MAC holds, while the pool holds fewer than
// maxLeases. Each address is passed by the scan once in the pool's life,
// and the excluded range is stepped over whole.
func (lp *leasePool) free() (uint32, bool) {
	if len(lp.byMAC) >= maxLeases {
		return 0, false
	}
	for lp.freed.Len() > 0 {
		a := heap.Pop(&lp.freed).(uint32)
		if lp.taken[a] == "" {
			return a, true
		}
	}
	for lp.next <= uint64(lp.last) {
		a := uint32(lp.next)
		if a >= lp.excludeLo && a <= lp.excludeHi {
			lp.next = uint64(lp.excludeHi) + 1
			continue
		}
		lp.next++
		if lp.leasable(a) && lp.taken[a] == "" {
			return a, true
		}
	}
	return 0, false
}

// addrHeap is a min-heap of addresses (container/heap).
type addrHeap []uint32

var _ heap.Interface = (*addrHeap)(nil)

func (h addrHeap) Len() int           { return len(h) }
func (h addrHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h addrHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *addrHeap) Push(x any)        { *h = append(*h, x.(uint32)) }
func (h *addrHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
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
