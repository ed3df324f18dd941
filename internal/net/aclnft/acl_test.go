package aclnft

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
)

func verdictOf(ex []expr.Any) expr.VerdictKind { return ex[len(ex)-1].(*expr.Verdict).Kind }

func TestCompileACLSwitch(t *testing.T) {
	sw := SwitchSpec{
		Switch: "sw0", Ports: []string{"va", "vb"}, Names: map[string]string{"a": "va", "b": "vb"}, DenyAll: true,
		Rules: []RuleSpec{
			{Direction: "to-lport", Priority: 10, Match: "ip4", Action: "allow"},
			{Direction: "to-lport", Priority: 200, Match: "ip4.src == 10.0.0.1 || ip4.src == 10.0.0.2", Action: "reject"},
			{Direction: "from-lport", Priority: 5, Match: `inport == "a" && icmp4`, Action: "allow-related"},
			{Direction: "from-lport", Priority: 50, Match: "udp.dst == 53 && ip4", Action: "pass"},
		},
	}
	from, to, err := compileACLSwitch(sw, Replies{})
	if err != nil {
		t.Fatal(err)
	}
	// to: the mirrored reply rule, the two reject (drop) rules at 200, the
	// allow at 10, then four deny-all drops.
	wantTo := []expr.VerdictKind{expr.VerdictReturn, expr.VerdictDrop, expr.VerdictDrop, expr.VerdictReturn,
		expr.VerdictDrop, expr.VerdictDrop, expr.VerdictDrop, expr.VerdictDrop}
	if len(to) != len(wantTo) {
		t.Fatalf("to-lport chain has %d rules, want %d", len(to), len(wantTo))
	}
	for i, w := range wantTo {
		if got := verdictOf(to[i]); got != w {
			t.Errorf("to rule %d: verdict %v, want %v", i, got, w)
		}
	}
	// from: the mirror first, then the pass at 50, then the rule at 5.
	if len(from) != 3 {
		t.Fatalf("from-lport chain has %d rules, want 3", len(from))
	}
	// The mirror of inport == a compares oifname with va.
	if !hasMeta(from[0], expr.MetaKeyOIFNAME) || hasMeta(from[0], expr.MetaKeyIIFNAME) {
		t.Errorf("from rule 0 is %#v, want the mirrored oifname test", from[0])
	}
	if !hasMeta(from[2], expr.MetaKeyIIFNAME) {
		t.Errorf("from rule 2 is %#v, want an iifname test", from[2])
	}

	for _, bad := range []RuleSpec{
		{Direction: "to-lport", Match: `outport == "zz"`, Action: "drop"},
		{Direction: "to-lport", Match: "ip4.sorc == 1.2.3.4", Action: "drop"},
		{Direction: "to-lport", Match: "ip4", Action: "deny"},
		{Direction: "sideways", Match: "ip4", Action: "drop"},
	} {
		if _, _, err := compileACLSwitch(SwitchSpec{Switch: "sw0", Rules: []RuleSpec{bad}}, Replies{}); !errors.Is(err, ErrACL) {
			t.Errorf("%+v: err = %v, want ErrACL", bad, err)
		}
	}
}

func TestAddrMask(t *testing.T) {
	ex := addrExprs(true, mustPrefix("10.1.0.0/16"))
	if len(ex) != 2 {
		t.Fatalf("want a payload and a mask, got %d", len(ex))
	}
	p := ex[0].(*expr.Payload)
	if p.Offset != 12 || p.Len != 4 {
		t.Errorf("source IPv4 at %d/%d", p.Offset, p.Len)
	}
	if m := ex[1].(*expr.Bitwise).Mask; m[0] != 0xff || m[1] != 0xff || m[2] != 0 {
		t.Errorf("mask %v", m)
	}
	if ex := addrExprs(false, mustPrefix("2001:db8::1/128")); len(ex) != 1 || ex[0].(*expr.Payload).Offset != 24 {
		t.Errorf("IPv6 destination: %#v", ex)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func hasMeta(ex []expr.Any, key expr.MetaKey) bool {
	for _, e := range ex {
		if m, ok := e.(*expr.Meta); ok && m.Key == key {
			return true
		}
	}
	return false
}

// Where conntrack sees a family's bridged traffic, allow-related puts the
// tracked-replies rule first in both chains and mirrors nothing of that
// family; the other family keeps the mirror, limited to it.
func TestCompileAllowRelatedTracked(t *testing.T) {
	sw := SwitchSpec{
		Switch: "sw0", Ports: []string{"va", "vb"}, Names: map[string]string{"a": "va", "b": "vb"},
		Rules: []RuleSpec{{Direction: "to-lport", Priority: 10, Match: `outport == "b" && tcp.dst == 80`, Action: "allow-related"}},
	}
	for _, tt := range []struct {
		rep      Replies
		wantFrom int // rules in the from chain
		mirrorV6 bool
	}{
		{Replies{IPv4: true, IPv6: true}, 1, false},
		// tcp.dst == 80 is an IPv4 and an IPv6 conjunction; only the
		// IPv6 one is mirrored.
		{Replies{IPv4: true}, 2, true},
	} {
		from, to, err := compileACLSwitch(sw, tt.rep)
		if err != nil {
			t.Fatal(err)
		}
		if len(from) != tt.wantFrom || len(to) != tt.wantFrom+2 {
			t.Fatalf("%+v: %d from and %d to rules, want %d and %d", tt.rep, len(from), len(to), tt.wantFrom, tt.wantFrom+2)
		}
		for _, chain := range [][][]expr.Any{from, to} {
			if !isTrackedReply(chain[0]) || verdictOf(chain[0]) != expr.VerdictReturn {
				t.Errorf("%+v: first rule %#v, want the tracked-replies return", tt.rep, chain[0])
			}
		}
		if tt.mirrorV6 && !hasMeta(from[1], expr.MetaKeyPROTOCOL) {
			t.Errorf("%+v: the mirror %#v is not limited to IPv6", tt.rep, from[1])
		}
	}
	// Nothing allow-related, nothing tracked.
	sw.Rules[0].Action = "allow"
	if from, _, _ := compileACLSwitch(sw, Replies{IPv4: true, IPv6: true}); len(from) != 0 {
		t.Errorf("allow alone put %d rules in the from chain", len(from))
	}
}
