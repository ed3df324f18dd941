package capture

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/bpf"
)

// CompileFilter compiles a subset of tcpdump's filter language to classic
// BPF over Ethernet frames: the primitives of FilterHelp (host and port
// match IPv4 only) combined with and, or, not and parentheses, with
// tcpdump's precedence: not binds tightest; and and or are equal and
// group from the left ("a or b and c" is "(a or b) and c").
// An empty expression is nil: everything. Anything else is an error
// wrapping ErrFilter that names the word it stopped at.
func CompileFilter(expr string) (Filter, error) {
	words := strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(expr))
	if len(words) == 0 {
		return nil, nil
	}
	p := &parser{words: words}
	n, err := p.or()
	if err == nil && !p.done() {
		err = fmt.Errorf("%q where and, or or the end was expected", p.peek())
	}
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v (supported: %s)", ErrFilter, expr, err, FilterHelp)
	}
	e := &emitter{}
	accept, reject := e.label(), e.label()
	e.gen(n, accept, reject)
	e.place(accept)
	e.emit(bpf.RetConstant{Val: snapLen})
	e.place(reject)
	e.emit(bpf.RetConstant{Val: 0})
	return e.assemble()
}

// node is a parsed filter: a primitive's instructions, or not, and, or.
type node struct {
	op   string // "prim", "not", "and", "or"
	prim []bpf.Instruction
	a, b *node
}

// parser reads words by recursive descent:
// or := unary (("and" | "or") unary)*; unary := "not" unary | "(" or ")" | primitive.
type parser struct {
	words []string
	i     int
}

func (p *parser) done() bool { return p.i >= len(p.words) }

func (p *parser) peek() string {
	if p.done() {
		return ""
	}
	return p.words[p.i]
}

func (p *parser) accept(words ...string) bool {
	for _, w := range words {
		if p.peek() == w {
			p.i++
			return true
		}
	}
	return false
}

func (p *parser) or() (*node, error) {
	n, err := p.unary()
	for err == nil {
		op := ""
		switch {
		case p.accept("and", "&&"):
			op = "and"
		case p.accept("or", "||"):
			op = "or"
		default:
			return n, nil
		}
		var m *node
		if m, err = p.unary(); err == nil {
			n = &node{op: op, a: n, b: m}
		}
	}
	return n, err
}

func (p *parser) unary() (*node, error) {
	switch {
	case p.done():
		return nil, errors.New("ends where a primitive was expected")
	case p.accept("not", "!"):
		n, err := p.unary()
		return &node{op: "not", a: n}, err
	case p.accept("("):
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.accept(")") {
			return nil, errors.New(`"(" without its ")"`)
		}
		return n, nil
	case p.peek() == ")":
		return nil, errors.New(`")" without its "("`)
	}
	ins, rest, err := primitive(p.words[p.i:])
	if err != nil {
		return nil, err
	}
	p.i = len(p.words) - len(rest)
	return &node{op: "prim", prim: ins}, nil
}

// target is where a jump goes: a label, or (label < 0) a relative skip
// inside a primitive.
type target struct {
	label int
	skip  uint8
}

type pseudo struct {
	ins    bpf.Instruction
	jt, jf target // of a JumpIf
	jump   int    // label of an unconditional Jump; -1 for none
}

// emitter lays a parsed filter out as code whose jumps name labels, then
// resolves them; BPF jumps go forward only, and every label is placed
// after the code that jumps to it.
type emitter struct {
	code []pseudo
	at   []int // label -> its instruction
}

func (e *emitter) label() int {
	e.at = append(e.at, -1)
	return len(e.at) - 1
}

func (e *emitter) place(l int) { e.at[l] = len(e.code) }

func (e *emitter) emit(ins bpf.Instruction) {
	e.code = append(e.code, pseudo{ins: ins, jump: -1})
}

// gen emits n so that a matching packet goes on at label t, another at f.
func (e *emitter) gen(n *node, t, f int) {
	switch n.op {
	case "not":
		e.gen(n.a, f, t)
	case "and":
		m := e.label()
		e.gen(n.a, m, f)
		e.place(m)
		e.gen(n.b, t, f)
	case "or":
		m := e.label()
		e.gen(n.a, t, m)
		e.place(m)
		e.gen(n.b, t, f)
	default:
		resolve := func(skip uint8) target {
			switch skip {
			case toReject:
				return target{label: f}
			case toBlockEnd:
				return target{label: t}
			}
			return target{label: -1, skip: skip}
		}
		for _, ins := range n.prim {
			p := pseudo{ins: ins, jump: -1}
			if j, ok := ins.(bpf.JumpIf); ok {
				p.jt, p.jf = resolve(j.SkipTrue), resolve(j.SkipFalse)
			}
			e.code = append(e.code, p)
		}
		// Falling off the end of a primitive is a match.
		e.code = append(e.code, pseudo{ins: bpf.Jump{}, jump: t})
	}
}

// assemble resolves the labels and assembles the program.
func (e *emitter) assemble() (Filter, error) {
	prog := make([]bpf.Instruction, len(e.code))
	for i, p := range e.code {
		skip := func(tg target) (uint8, error) {
			if tg.label < 0 {
				return tg.skip, nil
			}
			d := e.at[tg.label] - i - 1
			if d < 0 || d > 255 {
				return 0, fmt.Errorf("%w: too long", ErrFilter)
			}
			return uint8(d), nil
		}
		switch ins := p.ins.(type) {
		case bpf.JumpIf:
			var err1, err2 error
			ins.SkipTrue, err1 = skip(p.jt)
			ins.SkipFalse, err2 = skip(p.jf)
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			prog[i] = ins
		case bpf.Jump:
			ins.Skip = uint32(e.at[p.jump] - i - 1)
			prog[i] = ins
		default:
			prog[i] = p.ins
		}
	}
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("%w: too long", ErrFilter)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	return raw, nil
}

// maxInstructions is the kernel's bound on a socket filter (BPF_MAXINSNS).
const maxInstructions = 4096
