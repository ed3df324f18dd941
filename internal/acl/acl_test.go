package acl

import (
	"errors"
	"strings"
	"testing"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		match string
		want  []string // one conjunction per rule
	}{
		{"1", []string{"1"}},
		{"0", nil},
		{"ip4", []string{"ethertype == 0x0800"}},
		{"arp", []string{"ethertype == 0x0806"}},
		{"ip", []string{"ethertype == 0x0800", "ethertype == 0x86dd"}},
		{"icmp4", []string{"ethertype == 0x0800 && l4proto == 1"}},
		{"icmp6", []string{"ethertype == 0x86dd && l4proto == 58"}},
		{"ip4.src == 10.0.0.10 && icmp4", []string{"ethertype == 0x0800 && l4proto == 1 && src == 10.0.0.10/32"}},
		{"ip4.src == '10.0.0.10'", []string{"ethertype == 0x0800 && src == 10.0.0.10/32"}},
		{`ip4.dst == "10.0.1.0/24"`, []string{"ethertype == 0x0800 && dst == 10.0.1.0/24"}},
		{"ip4.dst == 10.0.1.7/24", []string{"ethertype == 0x0800 && dst == 10.0.1.0/24"}},
		{"ip4.src != 10.0.0.1", []string{"ethertype == 0x0800 && src != 10.0.0.1/32"}},
		{"ip4.src == 0.0.0.0/0", []string{"ethertype == 0x0800"}},
		{"ip6.src == fe80::1", []string{"ethertype == 0x86dd && src == fe80::1/128"}},
		{"ip6.dst == 2001:db8::/32", []string{"ethertype == 0x86dd && dst == 2001:db8::/32"}},
		{"ip4.src == {10.0.0.1, 10.0.0.2}", []string{"ethertype == 0x0800 && src == 10.0.0.1/32", "ethertype == 0x0800 && src == 10.0.0.2/32"}},
		{"ip4.src != {10.0.0.1, 10.0.0.2}", []string{"ethertype == 0x0800 && src != 10.0.0.1/32 && src != 10.0.0.2/32"}},
		{"tcp.dst == 80 && ip4", []string{"ethertype == 0x0800 && l4proto == 6 && dport == 80"}},
		{"tcp.dst == 80", []string{"ethertype == 0x0800 && l4proto == 6 && dport == 80", "ethertype == 0x86dd && l4proto == 6 && dport == 80"}},
		{"udp.src >= 1024 && ip4", []string{"ethertype == 0x0800 && l4proto == 17 && sport >= 1024"}},
		{"udp.dst < 53 && ip4", []string{"ethertype == 0x0800 && l4proto == 17 && dport < 53"}},
		{"tcp.dst == 8000-8080 && ip4", []string{"ethertype == 0x0800 && l4proto == 6 && dport >= 8000 && dport <= 8080"}},
		{"tcp.dst == {22, 80} && ip4", []string{"ethertype == 0x0800 && l4proto == 6 && dport == 22", "ethertype == 0x0800 && l4proto == 6 && dport == 80"}},
		{`inport == "web"`, []string{"inport == web"}},
		{`outport != "web-eth1"`, []string{"outport != web-eth1"}},
		{"!ip4", []string{"ethertype != 0x0800"}},
		// A negated field keeps its prerequisite outside: ARP still matches.
		{"!(ip4.src == 10.0.0.1)", []string{"ethertype != 0x0800", "src != 10.0.0.1/32"}},
		{"!icmp4", []string{"ethertype != 0x0800", "l4proto != 1"}},
		{"ip4 && !ip4", nil},
		{"ip4 && ip6", nil},
		{"(ip4.src == 10.0.0.1 || ip4.src == 10.0.0.2) && icmp4", []string{
			"ethertype == 0x0800 && l4proto == 1 && src == 10.0.0.1/32",
			"ethertype == 0x0800 && l4proto == 1 && src == 10.0.0.2/32"}},
		{"ip4.src == 10.0.0.1 || ip4.src == 10.0.0.2 && icmp4", []string{
			"ethertype == 0x0800 && src == 10.0.0.1/32",
			"ethertype == 0x0800 && l4proto == 1 && src == 10.0.0.2/32"}},
		{"icmp4 && icmp4", []string{"ethertype == 0x0800 && l4proto == 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.match, func(t *testing.T) {
			got, err := Compile(tt.match)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			var s []string
			for _, c := range got {
				s = append(s, c.String())
			}
			if strings.Join(s, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(s, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		match string
		token string
		pos   int
		msg   string
	}{
		{"ip4.sorc == 10.0.0.1", "ip4.sorc", 1, `unknown field "ip4.sorc"`},
		{"icmp4 && eth.src == 00:11:22:33:44:55", "eth.src", 10, `unknown field "eth.src"`},
		{"", "", 1, "empty"},
		{"   ", "", 4, "empty"},
		{"ip4.src = 10.0.0.1", "=", 9, `unexpected "="`},
		{"ip4 & icmp4", "&", 5, `unexpected "&"`},
		{"ip4 | icmp4", "|", 5, `unexpected "|"`},
		{"ip4 ; icmp4", ";", 5, `unexpected character ";"`},
		{"ip4.src == 'abc", "'abc", 12, "not closed"},
		{"ip4.src == 10.0.0.300", "10.0.0.300", 12, "not an address"},
		{"ip4.src == fe80::1", "fe80::1", 12, "not an IPv4 address"},
		{"ip6.dst == 10.0.0.1", "10.0.0.1", 12, "not an IPv6 address"},
		{"ip4.src == 10.0.0.0/33", "10.0.0.0/33", 12, "not an address"},
		{"tcp.dst == 70000", "70000", 12, "not a port"},
		{"tcp.dst == http", "http", 12, "not a port"},
		{"tcp.dst == 90-80", "90-80", 12, "not a port"},
		{"tcp.dst < 80-90", "<", 9, "range"},
		{"tcp.dst < {80, 90}", "<", 9, "set"},
		{"ip4.src < 10.0.0.1", "<", 9, "ports"},
		{"tcp == 6", "==", 5, "protocol"},
		{"ip4.src", "", 8, "expected a comparison"},
		{"ip4.src && tcp", "&&", 9, "expected a comparison"},
		{"ip4.src ==", "", 11, "expected a value"},
		{"ip4.src == {10.0.0.1 10.0.0.2}", "10.0.0.2", 22, "expected , or }"},
		{"ip4.src == {10.0.0.1,", "", 22, "expected a value"},
		{"(ip4 && icmp4", "", 14, "expected )"},
		{"ip4 && icmp4)", ")", 13, "after a complete expression"},
		{"ip4 icmp4", "icmp4", 5, "after a complete expression"},
		{"ip4 &&", "", 7, "ends where a field"},
		{"&& ip4", "&&", 1, "expected a field"},
		{"!", "", 2, "ends where a field"},
		{"ip4 || || ip6", "||", 8, "expected a field"},
		{`inport == ""`, "", 11, "needs a port name"},
		{"inport == {}", "}", 12, "expected a value"},
		{strings.Repeat("(", 70) + "ip4" + strings.Repeat(")", 70), "(", 66, "nests deeper"},
		{strings.Repeat("ip4 && ", MaxLength), "", MaxLength + 1, "longer than"},
	}
	for _, tt := range tests {
		name := tt.match
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, err := Compile(tt.match)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) = %v, want an *Error", tt.match, err)
			}
			if e.Token != tt.token || e.Pos != tt.pos || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got token %q at %d: %s; want token %q at %d containing %q", e.Token, e.Pos, e.Msg, tt.token, tt.pos, tt.msg)
			}
		})
	}
}

func TestTooComplex(t *testing.T) {
	// 8 sets of 2 multiply out to 256 rules.
	m := strings.Repeat("tcp.dst == {1, 2} && ", 8) + "ip4"
	if _, err := Compile(m); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("Compile = %v, want too complex", err)
	}
}

func TestPortRefs(t *testing.T) {
	e, err := Parse(`inport == "a" && (outport == {"b", "c-eth1"} || ip4)`)
	if err != nil {
		t.Fatal(err)
	}
	got := PortRefs(e)
	want := []PortRef{{"inport", "a", 11}, {"outport", "b", 31}, {"outport", "c-eth1", 36}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ref %d: got %v, want %v", i, got[i], want[i])
		}
	}
}
