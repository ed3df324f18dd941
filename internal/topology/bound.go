package topology

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes bounds a kvm-compose.yaml. The largest real topologies are a
// few hundred kilobytes; the API's request bodies are smaller still.
const MaxFileBytes = 4 << 20

// sizeProblem refuses a file too large to parse.
func sizeProblem(data []byte) *Problem {
	if len(data) <= MaxFileBytes {
		return nil
	}
	return &Problem{Message: fmt.Sprintf("the file is %d bytes; a kvm-compose.yaml may hold at most %d (%d MiB)",
		len(data), MaxFileBytes, MaxFileBytes>>20)}
}

// expansion measures a parsed document as the decoder will see it, every
// alias and merge key (<<) replaced by what it names, before any of that
// work is done. Anchors referring to anchors multiply: twenty levels of
// `<<: [*a, *a]` stand for a million mappings in a few hundred bytes (the
// "billion laughs" of YAML). Each node's expanded size is computed once and
// remembered, so measuring costs time in proportion to the file, and the
// decoder only runs on documents whose expansion fits in nodeBudget.
type expansion struct {
	size map[*yaml.Node]int
	// open holds the nodes being measured: an alias to one of them is a loop.
	open    map[*yaml.Node]bool
	problem *Problem
}

// checkExpansion returns a problem when root, expanded, exceeds nodeBudget
// nodes or holds an alias loop the decoder could not leave.
func checkExpansion(root *yaml.Node) *Problem {
	e := &expansion{size: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	e.measure(root, false)
	return e.problem
}

// measure returns n's expanded node count, at most nodeBudget+1 (sizes are
// capped so they cannot overflow). inMerge says n is (part of) the value of
// a merge key, only to word the problem of a loop.
func (e *expansion) measure(n *yaml.Node, inMerge bool) int {
	if n == nil || e.problem != nil {
		return 0
	}
	if s, ok := e.size[n]; ok {
		return s
	}
	if n.Kind == yaml.AliasNode {
		t := n.Alias
		switch {
		case t == nil:
			return 1
		case e.open[t] && inMerge:
			e.problem = &Problem{Line: n.Line, Message: fmt.Sprintf(
				"merges (<<) *%s into itself (its anchor is on line %d)", n.Value, t.Line)}
			return 0
		case e.open[t]:
			e.problem = &Problem{Line: n.Line, Message: fmt.Sprintf(
				"alias *%s is inside its own anchor (line %d), so it would never end", n.Value, t.Line)}
			return 0
		}
		s := e.add(1, e.measure(t, inMerge), n)
		e.size[n] = s
		return s
	}
	e.open[n] = true
	s := 1
	for i, c := range n.Content {
		merge := inMerge && n.Kind == yaml.SequenceNode
		if n.Kind == yaml.MappingNode && i%2 == 1 {
			k := deref(n.Content[i-1])
			merge = k != nil && k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
		}
		s = e.add(s, e.measure(c, merge), c)
		if e.problem != nil {
			break
		}
	}
	delete(e.open, n)
	e.size[n] = s
	return s
}

// add sums two sizes and records the problem, at node at, once the sum
// passes the budget.
func (e *expansion) add(a, b int, at *yaml.Node) int {
	s := a + b
	if s > nodeBudget {
		s = nodeBudget + 1
		if e.problem == nil {
			e.problem = &Problem{Line: at.Line, Message: fmt.Sprintf(
				"aliases and merge keys (<<) here expand the document past %d nodes, the most a kvm-compose.yaml may hold once expanded", nodeBudget)}
		}
	}
	return s
}
