package acl

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Expr is a parsed match expression.
type Expr interface{ String() string }

// Or matches when any of its terms does.
type Or []Expr

// And matches when all of its terms do.
type And []Expr

// Not matches when X does not.
type Not struct{ X Expr }

// Const is the match "1" (true) or "0" (false).
type Const bool

// Proto is a protocol test written as a bare field: ip4, tcp, icmp6, …
type Proto struct{ Name string }

// Compare is a relation between a field and one value, or a set of values
// ("tcp.dst == {80, 443}": any of them for ==, none of them for !=).
type Compare struct {
	Field  string
	Op     string
	Values []Value
	Pos    int // column of the field
}

// Value is one operand of a Compare; which member is set depends on the
// field's kind.
type Value struct {
	Text   string
	Prefix netip.Prefix // addresses and CIDRs
	Lo, Hi uint16       // ports: Lo == Hi for one port, a range when written lo-hi
	Name   string       // inport, outport
	Pos    int
}

// The expression nodes, checked when the package compiles.
var (
	_ Expr = Or(nil)
	_ Expr = And(nil)
	_ Expr = Not{}
	_ Expr = Const(false)
	_ Expr = Proto{}
	_ Expr = Compare{}
)

func (o Or) String() string  { return join(o, " || ") }
func (a And) String() string { return join(a, " && ") }
func (n Not) String() string { return "!(" + n.X.String() + ")" }
func (c Const) String() string {
	if c {
		return "1"
	}
	return "0"
}
func (p Proto) String() string { return p.Name }
func (c Compare) String() string {
	vals := make([]string, len(c.Values))
	for i, v := range c.Values {
		vals[i] = v.Text
	}
	v := strings.Join(vals, ", ")
	if len(c.Values) != 1 {
		v = "{" + v + "}"
	}
	return c.Field + " " + c.Op + " " + v
}

func join[T Expr](xs []T, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = "(" + x.String() + ")"
	}
	return strings.Join(s, sep)
}

// fieldKind says what a field's values are.
type fieldKind int

const (
	kindProto fieldKind = iota // no value: a protocol test
	kindAddr4
	kindAddr6
	kindPort
	kindName
)

type field struct {
	kind  fieldKind
	proto string // tcp or udp for port fields
	src   bool   // source (or inport) rather than destination (or outport)
}

var fields = map[string]field{
	"ip":      {kind: kindProto},
	"ip4":     {kind: kindProto},
	"ip6":     {kind: kindProto},
	"tcp":     {kind: kindProto},
	"udp":     {kind: kindProto},
	"icmp":    {kind: kindProto},
	"icmp4":   {kind: kindProto},
	"icmp6":   {kind: kindProto},
	"arp":     {kind: kindProto},
	"ip4.src": {kind: kindAddr4, src: true},
	"ip4.dst": {kind: kindAddr4},
	"ip6.src": {kind: kindAddr6, src: true},
	"ip6.dst": {kind: kindAddr6},
	"tcp.src": {kind: kindPort, proto: "tcp", src: true},
	"tcp.dst": {kind: kindPort, proto: "tcp"},
	"udp.src": {kind: kindPort, proto: "udp", src: true},
	"udp.dst": {kind: kindPort, proto: "udp"},
	"inport":  {kind: kindName, src: true},
	"outport": {kind: kindName},
}

// Fields lists the field names a match may use, sorted.
func Fields() []string {
	out := make([]string, 0, len(fields))
	for f := range fields {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// MaxLength bounds a match expression, so a pasted file cannot ask for
// unbounded work.
const MaxLength = 4096

// maxDepth bounds the nesting of parentheses and "!".
const maxDepth = 64

// Parse reads a match expression. On failure the error is an *Error
// naming the column and the token.
func Parse(s string) (Expr, error) {
	if len(s) > MaxLength {
		return nil, &Error{Pos: MaxLength + 1, Token: "", Msg: fmt.Sprintf("the match is longer than %d bytes", MaxLength)}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == tokEOF {
		return nil, errAt(p.peek(), "the match is empty (write 1 to match everything)")
	}
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, errAt(t, "unexpected %s after a complete expression (join terms with && or ||)", t)
	}
	return e, nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) or(depth int) (Expr, error) {
	var terms Or
	for {
		e, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
		if t := p.peek(); t.kind != tokOp || t.text != "||" {
			break
		}
		p.next()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) and(depth int) (Expr, error) {
	var terms And
	for {
		e, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
		if t := p.peek(); t.kind != tokOp || t.text != "&&" {
			break
		}
		p.next()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) unary(depth int) (Expr, error) {
	t := p.peek()
	if depth > maxDepth {
		return nil, errAt(t, "the match nests deeper than %d levels", maxDepth)
	}
	switch {
	case t.kind == tokOp && t.text == "!":
		p.next()
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return Not{x}, nil
	case t.kind == tokLParen:
		p.next()
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, errAt(c, "expected ) to close the ( at column %d, found %s", t.pos, c)
		}
		return x, nil
	case t.kind == tokWord:
		return p.atom()
	case t.kind == tokEOF:
		return nil, errAt(t, "the match ends where a field was expected")
	}
	return nil, errAt(t, "expected a field, ! or (, found %s", t)
}

func (p *parser) atom() (Expr, error) {
	t := p.next()
	switch t.text {
	case "1":
		return Const(true), nil
	case "0":
		return Const(false), nil
	}
	f, ok := fields[t.text]
	if !ok {
		return nil, errAt(t, "unknown field %q (known: %s)", t.text, strings.Join(Fields(), ", "))
	}
	op := p.peek()
	isCmp := op.kind == tokOp && op.text != "&&" && op.text != "||" && op.text != "!"
	if f.kind == kindProto {
		if isCmp {
			return nil, errAt(op, "%s is a protocol and takes no comparison (write it alone, e.g. %s && ...)", t.text, t.text)
		}
		return Proto{Name: t.text}, nil
	}
	if !isCmp {
		return nil, errAt(op, "expected a comparison (==, != …) after %s, found %s", t.text, op)
	}
	p.next()
	switch op.text {
	case "==", "!=":
	case "<", "<=", ">", ">=":
		if f.kind != kindPort {
			return nil, errAt(op, "%s compares %s with == or != only (< <= > >= are for ports)", op.text, t.text)
		}
	}
	c := Compare{Field: t.text, Op: op.text, Pos: t.pos}
	if p.peek().kind == tokLBrace {
		open := p.next()
		for {
			v, err := p.value(t.text, f)
			if err != nil {
				return nil, err
			}
			c.Values = append(c.Values, v)
			n := p.next()
			if n.kind == tokRBrace {
				break
			}
			if n.kind != tokComma {
				return nil, errAt(n, "expected , or } in the set opened at column %d, found %s", open.pos, n)
			}
		}
		if len(c.Values) > 1 && c.Op != "==" && c.Op != "!=" {
			return nil, errAt(op, "%s cannot compare with a set (use == or !=)", op.text)
		}
		return c, nil
	}
	v, err := p.value(t.text, f)
	if err != nil {
		return nil, err
	}
	c.Values = []Value{v}
	if v.Lo != v.Hi && c.Op != "==" && c.Op != "!=" {
		return nil, errAt(op, "%s cannot compare with a range (use == or !=)", op.text)
	}
	return c, nil
}

func (p *parser) value(name string, f field) (Value, error) {
	t := p.next()
	if t.kind != tokWord && t.kind != tokString {
		return Value{}, errAt(t, "expected a value for %s, found %s", name, t)
	}
	v := Value{Text: t.text, Pos: t.pos}
	switch f.kind {
	case kindAddr4, kindAddr6:
		pfx, err := parsePrefix(t.text)
		if err != nil {
			return Value{}, errAt(t, "%q is not an address or CIDR for %s", t.text, name)
		}
		if want4 := f.kind == kindAddr4; pfx.Addr().Is4() != want4 {
			return Value{}, errAt(t, "%s is not an %s address, as %s needs", t.text, map[bool]string{true: "IPv4", false: "IPv6"}[want4], name)
		}
		v.Prefix = pfx.Masked()
	case kindPort:
		lo, hi, ok := parsePorts(t.text)
		if !ok {
			return Value{}, errAt(t, "%q is not a port (0-65535) or range lo-hi for %s", t.text, name)
		}
		v.Lo, v.Hi = lo, hi
	case kindName:
		if t.text == "" {
			return Value{}, errAt(t, "%s needs a port name", name)
		}
		v.Name = t.text
	}
	return v, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePorts(s string) (lo, hi uint16, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, false
	}
	if !isRange {
		return uint16(l), uint16(l), true
	}
	h, err := strconv.ParseUint(b, 10, 16)
	if err != nil || h < l {
		return 0, 0, false
	}
	return uint16(l), uint16(h), true
}

// PortRef is a use of a port name in inport or outport.
type PortRef struct {
	Field, Name string
	Pos         int
}

// PortRefs lists the port names e uses, in the order written.
func PortRefs(e Expr) []PortRef {
	var out []PortRef
	var walk func(Expr)
	walk = func(e Expr) {
		switch x := e.(type) {
		case Or:
			for _, t := range x {
				walk(t)
			}
		case And:
			for _, t := range x {
				walk(t)
			}
		case Not:
			walk(x.X)
		case Compare:
			if fields[x.Field].kind == kindName {
				for _, v := range x.Values {
					out = append(out, PortRef{Field: x.Field, Name: v.Name, Pos: v.Pos})
				}
			}
		}
	}
	walk(e)
	return out
}
