package acl

import (
	"errors"
	"testing"
)

// FuzzCompile: any input parses or fails with an *Error, never panics, and
// what parses lowers within MaxConjunctions or says it is too complex.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"ip4.src == 10.0.0.10 && icmp4", `inport == "web" || !(tcp.dst == {22, 80})`,
		"ip6.dst == fe80::/64 && udp.src >= 1024", "((1))", "!0", "tcp.dst == 1-2",
		"ip4.src == '10.0.0.10'", "ip4 &", "'", "{", "outport != \"a-eth0\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %v, not an *Error", s, err)
			}
			if pe.Pos < 1 || pe.Pos > len(s)+1 && len(s) <= MaxLength {
				t.Fatalf("Parse(%q): column %d out of range", s, pe.Pos)
			}
			return
		}
		conjs, err := Lower(e)
		if err == nil && len(conjs) > MaxConjunctions {
			t.Fatalf("Lower(%q) made %d rules", s, len(conjs))
		}
	})
}
