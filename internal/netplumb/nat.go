package netplumb

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/topology"
)

// applyNAT writes the router's NAT into its own table (family ip) inside
// the namespace nsfd, in one transaction:
//
//	snat:          postrouting  ip saddr LOGICAL oifname OUT snat to EXTERNAL
//	dnat_and_snat: the same, plus prerouting  ip daddr EXTERNAL dnat to LOGICAL
//
// SNAT applies only to traffic leaving through the port the external
// address is on, as OVN's gateway port does: between the router's inner
// switches guests see each other's own addresses.
func applyNAT(nsfd int, r topology.Router) error {
	if len(r.NAT) == 0 {
		return nil
	}
	conn, err := nftables.New(nftables.WithNetNSFd(nsfd))
	if err != nil {
		return fmt.Errorf("nftables in the router: %w", err)
	}
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: r.Table})
	post := conn.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	pre := conn.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	for _, n := range r.NAT {
		logical, err := netip.ParsePrefix(n.LogicalIP)
		if err != nil {
			return fmt.Errorf("logical_ip %s: %w", n.LogicalIP, err)
		}
		ext, err := netip.ParseAddr(n.ExternalIP)
		if err != nil || !ext.Is4() || !logical.Addr().Is4() {
			return fmt.Errorf("nat %s → %s: IPv4 addresses only", n.LogicalIP, n.ExternalIP)
		}
		snat := append(matchPrefix(12, logical), ifnameIs(expr.MetaKeyOIFNAME, n.OutPort)...)
		snat = append(snat, natTo(expr.NATTypeSourceNAT, ext)...)
		conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: snat})
		if n.Type == topology.NATDnatAndSnat {
			dnat := append(matchPrefix(16, netip.PrefixFrom(ext, 32)), natTo(expr.NATTypeDestNAT, logical.Addr())...)
			conn.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: dnat})
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write table %s: %w", r.Table, err)
	}
	return nil
}

// matchPrefix compares the IPv4 header's address at offset (12 source, 16
// destination) with prefix p.
func matchPrefix(offset uint32, p netip.Prefix) []expr.Any {
	mask := net.CIDRMask(p.Bits(), 32)
	addr := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
	}
}

// ifnameIs compares an interface name (key IIFNAME or OIFNAME) with name,
// terminating NUL included.
func ifnameIs(key expr.MetaKey, name string) []expr.Any {
	if name == "" {
		return nil
	}
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: append([]byte(name), 0)},
	}
}

// ifnameIsNot is ifnameIs negated.
func ifnameIsNot(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: append([]byte(name), 0)},
	}
}

func natTo(kind expr.NATType, a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: b[:]},
		&expr.NAT{Type: kind, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}
}
