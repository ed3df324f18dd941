package topology

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/mattn/go-shellwords"
	"go.yaml.in/yaml/v3"
)

// Spellings of the original TestbedOS that this project reads differently
// from the rest of its schema.

// LoadBalancingOriginal is the original's spelling of naive round robin.
const LoadBalancingOriginal = "NaiveRoundRobin"

// ShellWords is a command line: a list of words, or, as the original writes
// docker's command and entrypoint, one string split into words the way a
// shell splits them (quotes and backslashes); no shell runs, and nothing is
// expanded.
type ShellWords []string

// Tooling is the original's tooling section (and its legacy network.ovs).
// It holds no options there either, so only an empty one is accepted.
type Tooling struct{}

// oneForMany reports whether a list of t may be written as one mapping: a
// machine's network, as the original allows.
func oneForMany(t reflect.Type) bool {
	return t.Elem() == reflect.TypeOf(NetworkAttachment{})
}

// scalarList decodes a list type written as one scalar: ShellWords. ok is
// false when t has no such spelling.
func scalarList(n *yaml.Node, v reflect.Value) (ok bool, msg string) {
	if v.Type() != reflect.TypeOf(ShellWords{}) || n.Kind != yaml.ScalarNode {
		return false, ""
	}
	words, err := splitWords(n.Value)
	if err != nil {
		return true, fmt.Sprintf("%q %v", n.Value, err)
	}
	v.Set(reflect.ValueOf(words))
	return true, ""
}

// splitWords splits a command line as a shell would, without running one:
// an operator (; & | < >) outside quotes would need a shell and is refused.
func splitWords(s string) (ShellWords, error) {
	p := shellwords.NewParser()
	words, err := p.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("is not a command line: %v (close every quote)", err)
	}
	if p.Position >= 0 && p.Position < len(s) {
		return nil, fmt.Errorf("holds the shell operator %q, which needs a shell: write it as a list, e.g. [sh, -c, '...']", s[p.Position:p.Position+1])
	}
	// An empty string is an empty command line (entrypoint: "" clears the
	// image's), not an absent one.
	return append(ShellWords{}, words...), nil
}

// unsupportedField explains a field of the original that names something
// this project has not got, instead of a bare "not a known field".
func unsupportedField(t reflect.Type, key string) (string, bool) {
	if t == reflect.TypeOf(Machine{}) && key == "android" {
		return "android guests are not supported (kinds: " + strings.Join([]string{KindNetns, KindLibvirt, KindDocker}, ", ") + ")", true
	}
	return "", false
}

// loadBalancing is testbed_options.load_balancing in this project's
// spelling: the original's NaiveRoundRobin is naive_round_robin.
func (o TestbedOptions) loadBalancing() string {
	if o.LoadBalancing == LoadBalancingOriginal {
		return LoadBalancingNaiveRoundRobin
	}
	return o.LoadBalancing
}

// note records what a field the original accepted means here, as
// "file:line: field: message", for the action's log (State.Notes).
func (c *Config) note(st *State, field, format string, args ...any) {
	st.Notes = append(st.Notes, fmt.Sprintf("%s:%d: %s: ", c.file, c.line(field), field)+fmt.Sprintf(format, args...))
}
