package dhcp

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/testbedos/testbedos/internal/topology"
)

// replies is a PacketConn that keeps the DHCP replies written to it.
type replies struct {
	net.PacketConn
	got []*dhcpv4.DHCPv4
}

func (r *replies) WriteTo(b []byte, _ net.Addr) (int, error) {
	m, err := dhcpv4.FromBytes(b)
	if err == nil {
		r.got = append(r.got, m)
	}
	return len(b), nil
}

func macOf(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xfe, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

func discover(t *testing.T, lp *leasePool, c *replies, mac net.HardwareAddr) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		t.Fatal(err)
	}
	n := len(c.got)
	lp.handle(c, &net.UDPAddr{IP: net.IPv4bcast, Port: 68}, m)
	if len(c.got) == n {
		return nil
	}
	return c.got[len(c.got)-1]
}

// A guest sending DISCOVERs from random MACs (and never a REQUEST) must
// not make the pool hold an entry per MAC without end: memory stays
// bounded however large the subnet.
func TestDHCPDiscoverFloodIsBounded(t *testing.T) {
	lp, err := newLeasePool(topology.DHCPPool{Switch: "s", IfName: "p", Gateway: "10.0.0.1", Subnet: "10.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &replies{}
	for i := range maxLeases + 256 {
		discover(t, lp, c, macOf(i))
	}
	lp.mu.Lock()
	n := len(lp.byMAC)
	lp.mu.Unlock()
	if n > maxLeases {
		t.Fatalf("%d DISCOVERs from different MACs left %d entries in the pool (bound %d)", maxLeases+256, n, maxLeases)
	}
}

// Offers never taken up with a REQUEST are given to others once they are
// stale: a DISCOVER flood does not starve the switch's guests for good.
func TestDHCPStaleOffersAreReclaimed(t *testing.T) {
	lp, err := newLeasePool(topology.DHCPPool{Switch: "s", IfName: "p", Gateway: "10.0.0.1", Subnet: "10.0.0.0/28"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	lp.now = func() time.Time { return now }
	c := &replies{}
	for i := range 100 {
		discover(t, lp, c, macOf(i))
	}
	legit := macOf(1 << 20)
	if r := discover(t, lp, c, legit); r != nil {
		t.Fatalf("a full pool offered %s", r.YourIPAddr)
	}
	now = now.Add(offerHold + time.Second)
	r := discover(t, lp, c, legit)
	if r == nil || r.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatal("stale offers were not reclaimed: no offer for a new guest")
	}
	// A REQUEST binds it: it is not reclaimed later.
	req, err := dhcpv4.NewRequestFromOffer(r)
	if err != nil {
		t.Fatal(err)
	}
	lp.handle(c, &net.UDPAddr{IP: net.IPv4bcast, Port: 68}, req)
	if ack := c.got[len(c.got)-1]; ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(r.YourIPAddr) {
		t.Fatalf("REQUEST answered %s %s, want an ACK of %s", ack.MessageType(), ack.YourIPAddr, r.YourIPAddr)
	}
	now = now.Add(10 * offerHold)
	for i := range 100 {
		discover(t, lp, c, macOf(1000+i))
	}
	lp.mu.Lock()
	got := lp.byMAC[legit.String()]
	lp.mu.Unlock()
	if addr(got).String() != r.YourIPAddr.String() {
		t.Fatalf("the bound lease of %s went away: now %v", legit, got)
	}
}
