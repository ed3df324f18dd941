// Package aclnft compiles a deployment's ACLs (parsed by package acl) into
// the nftables tables that enforce them on the ports of its bridges.
package aclnft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/testbedos/testbedos/internal/acl"
)

// A deployment's ACLs on one host are one nftables table of the bridge
// family, owned by the deployment:
//
//	table bridge <name>
//	  chain forward (hook forward, priority -200, policy accept)
//	    iifname <port> jump from-<switch>     one per guest port on this host
//	    oifname <port> jump to-<switch>
//	  chain from-<switch>   from-lport rules, highest priority first
//	  chain to-<switch>     to-lport rules, then the deny-all drops
//	table inet <name>       only where conntrack sees bridged traffic
//	  chain prerouting      marks tracked replies (replies.go)
//
// from-lport rules see the frames a guest port sends into the switch,
// to-lport rules the frames the switch delivers to a guest port; a frame
// between two guests of the switch passes both, as in OVN's ingress and
// egress pipelines. allow, allow-stateless and pass end their direction
// (return) and the other direction still applies; drop drops. reject
// drops too: the kernel's bridge family has no reject in the forward hook
// (NFT_BRIDGE_REJECT is not built here). allow-related also lets the
// replies through: those conntrack has seen, where br_netfilter shows it
// bridged traffic, else anything of their shape (replies.go). Where
// conntrack sees them, replies of connections that allow or
// allow-stateless rules let through pass too on a switch with allow-related
// rules (OVN commits allow to conntrack once a switch has stateful rules).
// apply_deny_all drops, at the end of the to-lport chain, the IP
// traffic delivered to a guest that no rule allowed; ARP and IPv6
// neighbour discovery always pass, as they must for anything to work.

// TableSpec is the ACL table of a deployment on one host. It is a plain
// value with JSON tags, so a remote host can take it over the wire.
type TableSpec struct {
	Name     string       `json:"name"`
	Switches []SwitchSpec `json:"switches"`
}

// SwitchSpec is one switch's ACLs on a host.
type SwitchSpec struct {
	Switch string `json:"switch"`
	// Ports are the bridge ports the ACLs guard: the host-side ends of the
	// switch's guest interfaces on this host.
	Ports []string `json:"ports"`
	// Names maps the port names inport and outport use to host-side ends.
	Names   map[string]string `json:"names,omitempty"`
	DenyAll bool              `json:"deny_all,omitempty"`
	Rules   []RuleSpec        `json:"rules,omitempty"`
}

// RuleSpec is one rule as kvm-compose.yaml wrote it.
type RuleSpec struct {
	Direction string `json:"direction"` // to-lport | from-lport
	Priority  int    `json:"priority"`
	Match     string `json:"match"`
	Action    string `json:"action"`
}

// ErrACL: an ACL cannot be compiled (its match, action or a port name).
var ErrACL = errors.New("bad ACL")

// aclChainPriority runs before br_netfilter hands bridged IP to the IP
// hooks (priority 0), like nft's "filter" priority of the bridge family.
var aclChainPriority = nftables.ChainPriorityRef(-200)

type compiledRule struct {
	prio  int
	seq   int
	exprs []expr.Any
}

// compileACLSwitch turns one switch's rules into the expressions of its two
// chains; rep says which families' replies conntrack sees.
func compileACLSwitch(sw SwitchSpec, rep Replies) (from, to [][]expr.Any, err error) {
	var fromR, toR []compiledRule
	seq := 0
	related := false
	add := func(list *[]compiledRule, prio int, conj acl.Conj, verdict expr.Any) error {
		ex, err := testExprs(conj, sw.Names)
		if err != nil {
			return err
		}
		seq++
		*list = append(*list, compiledRule{prio: prio, seq: seq, exprs: append(ex, verdict)})
		return nil
	}
	ret := &expr.Verdict{Kind: expr.VerdictReturn}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	for i, r := range sw.Rules {
		conjs, err := acl.Compile(r.Match)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: switch %s rule %d (%s): %w", ErrACL, sw.Switch, i, r.Match, err)
		}
		var verdict expr.Any
		switch r.Action {
		case "allow", "allow-stateless", "allow-related", "pass":
			verdict = ret
		case "drop", "reject":
			verdict = drop
		default:
			return nil, nil, fmt.Errorf("%w: switch %s rule %d: unknown action %q", ErrACL, sw.Switch, i, r.Action)
		}
		list := &toR
		switch r.Direction {
		case "to-lport":
		case "from-lport":
			list = &fromR
		default:
			return nil, nil, fmt.Errorf("%w: switch %s rule %d: unknown direction %q", ErrACL, sw.Switch, i, r.Direction)
		}
		for _, c := range conjs {
			if err := add(list, r.Priority, c, verdict); err != nil {
				return nil, nil, fmt.Errorf("%w: switch %s rule %d (%s): %w", ErrACL, sw.Switch, i, r.Match, err)
			}
			if r.Action != "allow-related" {
				continue
			}
			related = true
			// Replies conntrack cannot see: mirrored, first, in both
			// directions (replies.go).
			for _, m := range untrackedMirrors(c, rep) {
				for _, l := range []*[]compiledRule{&fromR, &toR} {
					if err := add(l, 1<<20, m, ret); err != nil {
						return nil, nil, err
					}
				}
			}
		}
	}
	if related && rep.Any() {
		// Tracked replies first of all, in both directions.
		for _, l := range []*[]compiledRule{&fromR, &toR} {
			seq++
			*l = append(*l, compiledRule{prio: 1 << 21, seq: seq, exprs: trackedReplyExprs()})
		}
	}
	if sw.DenyAll {
		for _, c := range denyAll() {
			if err := add(&toR, -1, c, drop); err != nil {
				return nil, nil, err
			}
		}
	}
	return ordered(fromR), ordered(toR), nil
}

// denyAll drops IPv4 and IPv6 except neighbour discovery (ICMPv6 133-137).
func denyAll() []acl.Conj {
	eth6 := acl.Test{Kind: acl.EtherType, Num: acl.EtherIPv6}
	icmp6 := acl.Test{Kind: acl.L4Proto, Num: acl.ProtoICMP6}
	return []acl.Conj{
		{{Kind: acl.EtherType, Num: acl.EtherIPv4}},
		{eth6, {Kind: acl.L4Proto, Op: acl.Ne, Num: acl.ProtoICMP6}},
		{eth6, icmp6, {Kind: icmpType, Op: acl.Lt, Num: 133}},
		{eth6, icmp6, {Kind: icmpType, Op: acl.Gt, Num: 137}},
	}
}

// icmpType is a test kind of this package only: the ICMP type byte.
const icmpType acl.TestKind = 100

// untrackedMirrors are the mirrored reply rules of conjunction c for the
// families whose replies conntrack does not see: the plain mirror when it
// sees none, else the mirror of each untracked family c may match.
func untrackedMirrors(c acl.Conj, rep Replies) []acl.Conj {
	if !rep.Any() {
		return []acl.Conj{mirror(c)}
	}
	pinned := uint16(0)
	for _, t := range c {
		if t.Kind == acl.EtherType && t.Op == acl.Eq {
			pinned = t.Num
		}
	}
	var out []acl.Conj
	for _, f := range []struct {
		tracked bool
		ether   uint16
	}{{rep.IPv4, acl.EtherIPv4}, {rep.IPv6, acl.EtherIPv6}} {
		switch {
		case f.tracked, pinned != 0 && pinned != f.ether:
		case pinned == f.ether:
			out = append(out, mirror(c))
		default:
			out = append(out, append(acl.Conj{{Kind: acl.EtherType, Num: f.ether}}, mirror(c)...))
		}
	}
	return out
}

// mirror swaps the two ends of every test: the shape of a reply.
func mirror(c acl.Conj) acl.Conj {
	out := make(acl.Conj, len(c))
	swap := map[acl.TestKind]acl.TestKind{
		acl.SrcAddr: acl.DstAddr, acl.DstAddr: acl.SrcAddr,
		acl.SrcPort: acl.DstPort, acl.DstPort: acl.SrcPort,
		acl.InPort: acl.OutPort, acl.OutPort: acl.InPort,
	}
	for i, t := range c {
		if k, ok := swap[t.Kind]; ok {
			t.Kind = k
		}
		out[i] = t
	}
	return out
}

func ordered(rs []compiledRule) [][]expr.Any {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].prio != rs[j].prio {
			return rs[i].prio > rs[j].prio
		}
		return rs[i].seq < rs[j].seq
	})
	out := make([][]expr.Any, len(rs))
	for i, r := range rs {
		out[i] = r.exprs
	}
	return out
}

var cmpOps = map[acl.Op]expr.CmpOp{
	acl.Eq: expr.CmpOpEq, acl.Ne: expr.CmpOpNeq,
	acl.Lt: expr.CmpOpLt, acl.Le: expr.CmpOpLte,
	acl.Gt: expr.CmpOpGt, acl.Ge: expr.CmpOpGte,
}

// testExprs is the nftables form of a conjunction of tests.
func testExprs(c acl.Conj, names map[string]string) ([]expr.Any, error) {
	var out []expr.Any
	cmp := func(op acl.Op, data []byte) *expr.Cmp {
		return &expr.Cmp{Op: cmpOps[op], Register: 1, Data: data}
	}
	for _, t := range c {
		switch t.Kind {
		case acl.EtherType:
			out = append(out, &expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
				cmp(t.Op, binary.BigEndian.AppendUint16(nil, t.Num)))
		case acl.L4Proto:
			out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(t.Op, []byte{byte(t.Num)}))
		case icmpType:
			out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				cmp(t.Op, []byte{byte(t.Num)}))
		case acl.SrcAddr, acl.DstAddr:
			out = append(out, addrExprs(t.Kind == acl.SrcAddr, t.Prefix)...)
			out = append(out, cmp(t.Op, t.Prefix.Masked().Addr().AsSlice()))
		case acl.SrcPort, acl.DstPort:
			off := uint32(0)
			if t.Kind == acl.DstPort {
				off = 2
			}
			out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
				cmp(t.Op, binary.BigEndian.AppendUint16(nil, t.Num)))
		case acl.InPort, acl.OutPort:
			dev, ok := names[t.Name]
			if !ok {
				return nil, fmt.Errorf("port %q is not on this switch", t.Name)
			}
			key := expr.MetaKeyIIFNAME
			if t.Kind == acl.OutPort {
				key = expr.MetaKeyOIFNAME
			}
			out = append(out, &expr.Meta{Key: key, Register: 1}, cmp(t.Op, ifname(dev)))
		default:
			return nil, fmt.Errorf("test kind %d has no nftables form", t.Kind)
		}
	}
	return out, nil
}

// addrExprs loads the source or destination address into register 1,
// masked to the prefix.
func addrExprs(src bool, p netip.Prefix) []expr.Any {
	off, size := uint32(16), uint32(4)
	if p.Addr().Is6() {
		off, size = 24, 16
	}
	if src {
		off -= size
	}
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size}}
	if p.Bits() < p.Addr().BitLen() {
		mask := make([]byte, size)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)})
	}
	return out
}

// ifname is an interface name as iptables-nft compares it: with its NUL.
func ifname(n string) []byte { return append([]byte(n), 0) }
