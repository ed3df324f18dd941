package acl

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// A match is lowered, as OVN does, by giving every field its prerequisites
// ("tcp.dst == 80" is "ip && tcp && tcp.dst == 80", "tcp" is "(ip4 || ip6)
// && ip.proto == 6"), pushing "!" down to single tests and multiplying out
// into a disjunction of conjunctions (DNF). Each test of a conjunction is
// one the packet filter can do on its own, and each conjunction becomes
// one rule. Because a prerequisite stays next to its field, a negated test
// is exact: "!(tcp.dst == 80)" is "!ip || !tcp || tcp.dst != 80", so it
// matches ARP as OVN's does.

// TestKind is what a Test looks at.
type TestKind int

// Test kinds.
const (
	// EtherType compares the frame's EtherType (Num: 0x0800, 0x86dd, 0x0806).
	EtherType TestKind = iota
	// L4Proto compares the IP protocol number (Num); defined for IP only,
	// and always next to its EtherType prerequisite.
	L4Proto
	// SrcAddr and DstAddr compare the IPv4 or IPv6 address with Prefix.
	SrcAddr
	DstAddr
	// SrcPort and DstPort compare the TCP or UDP port with Num.
	SrcPort
	DstPort
	// InPort and OutPort compare the port the frame comes in by, or goes
	// out by, with Name.
	InPort
	OutPort
)

// Op is a comparison.
type Op int

// Comparisons.
const (
	Eq Op = iota
	Ne
	Lt
	Le
	Gt
	Ge
)

var opText = [...]string{"==", "!=", "<", "<=", ">", ">="}

// The printable values, checked when the package compiles.
var (
	_ fmt.Stringer = Op(0)
	_ fmt.Stringer = Test{}
	_ fmt.Stringer = Conj(nil)
	_ fmt.Stringer = token{}
)

func (o Op) String() string { return opText[o] }

// negate returns the comparison that holds exactly when o does not.
func (o Op) negate() Op {
	return [...]Op{Ne, Eq, Ge, Gt, Le, Lt}[o]
}

// Test is one packet test.
type Test struct {
	Kind   TestKind
	Op     Op
	Num    uint16
	Prefix netip.Prefix
	Name   string
}

func (t Test) String() string {
	name := [...]string{"ethertype", "l4proto", "src", "dst", "sport", "dport", "inport", "outport"}[t.Kind]
	var v string
	switch t.Kind {
	case EtherType:
		v = fmt.Sprintf("0x%04x", t.Num)
	case SrcAddr, DstAddr:
		v = t.Prefix.String()
	case InPort, OutPort:
		v = t.Name
	default:
		v = fmt.Sprint(t.Num)
	}
	return name + " " + t.Op.String() + " " + v
}

// Conj is a conjunction of tests; the empty one matches every frame.
type Conj []Test

func (c Conj) String() string {
	if len(c) == 0 {
		return "1"
	}
	s := make([]string, len(c))
	for i, t := range c {
		s[i] = t.String()
	}
	return strings.Join(s, " && ")
}

// MaxConjunctions bounds the rules one match may become.
const MaxConjunctions = 64

// Ether types and IP protocols the tests use.
const (
	EtherIPv4  = 0x0800
	EtherIPv6  = 0x86dd
	EtherARP   = 0x0806
	ProtoICMP  = 1
	ProtoTCP   = 6
	ProtoUDP   = 17
	ProtoICMP6 = 58
)

// node is a formula over Tests.
type node struct {
	op   nodeOp
	kids []node
	test Test
}

type nodeOp int

const (
	nTrue nodeOp = iota
	nFalse
	nTest
	nAnd
	nOr
)

func leaf(t Test) node        { return node{op: nTest, test: t} }
func allOf(kids ...node) node { return node{op: nAnd, kids: kids} }
func anyOf(kids ...node) node { return node{op: nOr, kids: kids} }
func ether(n uint16) node     { return leaf(Test{Kind: EtherType, Num: n}) }
func l4(eth uint16, p uint16) node {
	return allOf(ether(eth), leaf(Test{Kind: L4Proto, Num: p}))
}

// protoNode is a protocol test with its prerequisites.
func protoNode(name string) node {
	switch name {
	case "ip4":
		return ether(EtherIPv4)
	case "ip6":
		return ether(EtherIPv6)
	case "ip":
		return anyOf(ether(EtherIPv4), ether(EtherIPv6))
	case "arp":
		return ether(EtherARP)
	case "tcp":
		return anyOf(l4(EtherIPv4, ProtoTCP), l4(EtherIPv6, ProtoTCP))
	case "udp":
		return anyOf(l4(EtherIPv4, ProtoUDP), l4(EtherIPv6, ProtoUDP))
	case "icmp4":
		return l4(EtherIPv4, ProtoICMP)
	case "icmp6":
		return l4(EtherIPv6, ProtoICMP6)
	case "icmp":
		return anyOf(l4(EtherIPv4, ProtoICMP), l4(EtherIPv6, ProtoICMP6))
	}
	panic("acl: unknown protocol " + name) // Parse admits only known ones
}

// compareNode is one relation "field op value" with its prerequisites.
func compareNode(c Compare, v Value) node {
	f := fields[c.Field]
	op := Eq
	for i, t := range opText {
		if t == c.Op {
			op = Op(i)
		}
	}
	var raw node
	switch f.kind {
	case kindAddr4, kindAddr6:
		k := DstAddr
		if f.src {
			k = SrcAddr
		}
		if v.Prefix.Bits() == 0 {
			raw = node{op: nTrue}
		} else {
			raw = leaf(Test{Kind: k, Op: Eq, Prefix: v.Prefix})
		}
		pre := ether(EtherIPv4)
		if f.kind == kindAddr6 {
			pre = ether(EtherIPv6)
		}
		if op == Ne {
			raw = negate(raw)
		}
		return allOf(pre, raw)
	case kindPort:
		k := DstPort
		if f.src {
			k = SrcPort
		}
		if v.Lo == v.Hi {
			raw = leaf(Test{Kind: k, Op: op, Num: v.Lo})
		} else {
			raw = allOf(leaf(Test{Kind: k, Op: Ge, Num: v.Lo}), leaf(Test{Kind: k, Op: Le, Num: v.Hi}))
			if op == Ne {
				raw = negate(raw)
			}
		}
		return allOf(protoNode(f.proto), raw)
	case kindName:
		k := OutPort
		if f.src {
			k = InPort
		}
		return leaf(Test{Kind: k, Op: op, Name: v.Name})
	}
	panic("acl: field without a value kind " + c.Field)
}

func toNode(e Expr) node {
	switch x := e.(type) {
	case Or:
		n := node{op: nOr}
		for _, t := range x {
			n.kids = append(n.kids, toNode(t))
		}
		return n
	case And:
		n := node{op: nAnd}
		for _, t := range x {
			n.kids = append(n.kids, toNode(t))
		}
		return n
	case Not:
		return negate(toNode(x.X))
	case Const:
		if x {
			return node{op: nTrue}
		}
		return node{op: nFalse}
	case Proto:
		return protoNode(x.Name)
	case Compare:
		// == {a, b} is any of them; != {a, b} none of them.
		var terms []node
		for _, v := range x.Values {
			terms = append(terms, compareNode(x, v))
		}
		if len(terms) == 1 {
			return terms[0]
		}
		if x.Op == "!=" {
			return allOf(terms...)
		}
		return anyOf(terms...)
	}
	panic(fmt.Sprintf("acl: unknown expression %T", e))
}

// negate pushes a "!" down to the tests (De Morgan).
func negate(n node) node {
	switch n.op {
	case nTrue:
		return node{op: nFalse}
	case nFalse:
		return node{op: nTrue}
	case nTest:
		t := n.test
		t.Op = t.Op.negate()
		return leaf(t)
	}
	out := node{op: nAnd}
	if n.op == nAnd {
		out.op = nOr
	}
	for _, k := range n.kids {
		out.kids = append(out.kids, negate(k))
	}
	return out
}

// errTooComplex is returned by dnf past MaxConjunctions.
var errTooComplex = fmt.Errorf("the match needs more than %d rules once its || are multiplied out; simplify it", MaxConjunctions)

// dnf multiplies n out; nil means "never", one empty Conj "always".
func dnf(n node) ([]Conj, error) {
	switch n.op {
	case nTrue:
		return []Conj{{}}, nil
	case nFalse:
		return nil, nil
	case nTest:
		return []Conj{{n.test}}, nil
	case nOr:
		var out []Conj
		for _, k := range n.kids {
			c, err := dnf(k)
			if err != nil {
				return nil, err
			}
			out = append(out, c...)
			if len(out) > MaxConjunctions {
				return nil, errTooComplex
			}
		}
		return out, nil
	}
	out := []Conj{{}}
	for _, k := range n.kids {
		c, err := dnf(k)
		if err != nil {
			return nil, err
		}
		var next []Conj
		for _, a := range out {
			for _, b := range c {
				if m, ok := merge(a, b); ok {
					next = append(next, m)
				}
			}
			if len(next) > MaxConjunctions*MaxConjunctions {
				return nil, errTooComplex
			}
		}
		out = next
	}
	return out, nil
}

// merge joins two conjunctions, dropping repeated tests; ok is false when
// they contradict each other on the EtherType or IP protocol.
func merge(a, b Conj) (Conj, bool) {
	out := append(Conj{}, a...)
	for _, t := range b {
		dup := false
		for _, u := range out {
			if u == t {
				dup = true
				break
			}
			if u.Kind == t.Kind && (t.Kind == EtherType || t.Kind == L4Proto) {
				switch {
				case u.Op == Eq && t.Op == Eq && u.Num != t.Num,
					u.Op != t.Op && u.Num == t.Num:
					return nil, false
				}
			}
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out, true
}

// Lower turns a parsed match into the conjunctions a packet filter runs,
// one rule each: a frame matches when any of them matches. The result is
// empty when the match can never hold. Tests inside a conjunction are
// sorted by kind, so the EtherType comes before what depends on it.
func Lower(e Expr) ([]Conj, error) {
	out, err := dnf(toNode(e))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxConjunctions {
		return nil, errTooComplex
	}
	for _, c := range out {
		sort.SliceStable(c, func(i, j int) bool { return c[i].Kind < c[j].Kind })
	}
	return out, nil
}

// Compile parses and lowers a match in one go.
func Compile(match string) ([]Conj, error) {
	e, err := Parse(match)
	if err != nil {
		return nil, err
	}
	return Lower(e)
}
