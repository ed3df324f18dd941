package router

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/nftexpr"
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
		if n.Unused != "" {
			continue
		}
		logical, err := netip.ParsePrefix(n.LogicalIP)
		if err != nil {
			return fmt.Errorf("logical_ip %s: %w", n.LogicalIP, err)
		}
		ext, err := netip.ParseAddr(n.ExternalIP)
		if err != nil || !ext.Is4() || !logical.Addr().Is4() {
			return fmt.Errorf("nat %s → %s: IPv4 addresses only", n.LogicalIP, n.ExternalIP)
		}
		snat := append(nftexpr.MatchPrefix(12, logical), nftexpr.IfnameIs(expr.MetaKeyOIFNAME, n.OutPort)...)
		snat = append(snat, natTo(expr.NATTypeSourceNAT, ext)...)
		conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: snat})
		if n.Type == topology.NATDnatAndSnat {
			dnat := append(nftexpr.MatchPrefix(16, netip.PrefixFrom(ext, 32)), natTo(expr.NATTypeDestNAT, logical.Addr())...)
			conn.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: dnat})
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write table %s: %w", r.Table, err)
	}
	return nil
}

func natTo(kind expr.NATType, a netip.Addr) []expr.Any {
	b := a.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: b[:]},
		&expr.NAT{Type: kind, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}
}
