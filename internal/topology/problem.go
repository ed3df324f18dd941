package topology

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// ErrInvalid is matched (errors.Is) by every *ValidationError: the topology
// the user wrote is wrong, as opposed to a fault of the machine.
var ErrInvalid = api.Categorized(api.ErrInvalid, "invalid topology")

// Problem is one thing wrong with a kvm-compose.yaml.
type Problem struct {
	File string `json:"file"`
	// Line is 1-based; 0 when the problem has no single place in the file.
	Line int `json:"line"`
	// Field is the path of the field, e.g. machines[1].network[0].ip; empty
	// for problems of the YAML syntax itself.
	Field   string `json:"field"`
	Message string `json:"message"`
}

// String formats the problem as "file:line: field message", e.g.
// "kvm-compose.yaml:12: machines[1].network[0].ip 10.1.0.5 is outside switch
// sw0 subnet 10.0.0.0/24".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(p.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		if p.Message != "" {
			b.WriteString(" ")
		}
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a topology, sorted by line.
type ValidationError struct {
	Problems []Problem
}

// Error returns one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true, and so that of its category.
func (e *ValidationError) Is(target error) bool { return errors.Is(ErrInvalid, target) }

// newValidationError sorts and de-duplicates problems; nil when there are none.
func newValidationError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: sortProblems(problems)}
}

func sortProblems(problems []Problem) []Problem {
	sort.SliceStable(problems, func(i, j int) bool {
		if problems[i].Line != problems[j].Line {
			return problems[i].Line < problems[j].Line
		}
		return problems[i].Field < problems[j].Field
	})
	out := problems[:0]
	for _, p := range problems {
		if len(out) > 0 && p == out[len(out)-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// problems collects Problems about one Config, skipping fields the decoder
// already reported so one mistake gives one message.
type problems struct {
	c    *Config
	list []Problem
}

func (ps *problems) addf(field, format string, args ...any) {
	for p := field; p != ""; p = parentPath(p) {
		if ps.c.bad[p] {
			return
		}
	}
	ps.list = append(ps.list, Problem{
		File:    ps.c.file,
		Line:    ps.c.line(field),
		Field:   field,
		Message: fmt.Sprintf(format, args...),
	})
}

// where describes a field for messages that point at another one.
func (c *Config) where(field string) string {
	if l := c.line(field); l > 0 {
		return fmt.Sprintf("%s, line %d", field, l)
	}
	return field
}
