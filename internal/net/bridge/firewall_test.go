package bridge

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// addChain creates a table and a base chain in it.
func addChain(t *testing.T, c *nftables.Conn, fam nftables.TableFamily, table, chain string, hook *nftables.ChainHook, policy nftables.ChainPolicy) *nftables.Chain {
	t.Helper()
	tb := c.AddTable(&nftables.Table{Family: fam, Name: table})
	ch := c.AddChain(&nftables.Chain{
		Name: chain, Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	if err := c.Flush(); err != nil {
		t.Fatalf("add %s %s: %v", table, chain, err)
	}
	return ch
}

// ruleComments lists the comments of a chain's rules in order ("-" for
// rules without one).
func ruleComments(t *testing.T, c *nftables.Conn, ch *nftables.Chain) []string {
	t.Helper()
	rules, err := c.GetRules(ch.Table, ch)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		if s, ok := comment(r.UserData); ok {
			out = append(out, s)
		} else {
			out = append(out, "-")
		}
	}
	return out
}

func TestFirewallRules(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	if !nettest.InNewNetns(t, prefix) {
		return
	}
	// From here on this process is alone in a fresh network namespace.
	fw := NewFirewall(nil)
	br1, br2 := prefix+"br1", prefix+"br2"

	// No forward chain at all: nothing happens.
	if err := fw.AllowBridge(br1); err != nil {
		t.Fatal(err)
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	if tables, err := c.ListTables(); err != nil || len(tables) != 0 {
		t.Fatalf("tables after AllowBridge without forward chains: %v, %v", tables, err)
	}

	drop, accept := nftables.ChainPolicyDrop, nftables.ChainPolicyAccept
	fwd4 := addChain(t, c, nftables.TableFamilyIPv4, "filter", "FORWARD", nftables.ChainHookForward, drop)
	in4 := addChain(t, c, nftables.TableFamilyIPv4, "filter", "INPUT", nftables.ChainHookInput, accept)
	fwd6 := addChain(t, c, nftables.TableFamilyIPv6, "filter", "FORWARD", nftables.ChainHookForward, drop)
	fwdInet := addChain(t, c, nftables.TableFamilyINet, "fw", "forward", nftables.ChainHookForward, accept)
	fwdBridge := addChain(t, c, nftables.TableFamilyBridge, "brfilter", "forward", nftables.ChainHookForward, accept)
	// A rule of someone else's, which must stay where it is.
	c.AddRule(&nftables.Rule{
		Table: fwd4.Table, Chain: fwd4,
		Exprs:    []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}},
		UserData: userdata.AppendString(nil, userdata.TypeComment, "docker"),
	})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	for _, br := range []string{br1, br1, br2} {
		if err := fw.AllowBridge(br); err != nil {
			t.Fatal(err)
		}
	}
	want := map[*nftables.Chain][]string{
		fwd4:      {ruleTag(br2), ruleTag(br1), "docker"},
		fwd6:      {ruleTag(br2), ruleTag(br1)},
		fwdInet:   {ruleTag(br2), ruleTag(br1)},
		in4:       nil,
		fwdBridge: nil,
	}
	for ch, w := range want {
		if got := ruleComments(t, c, ch); strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("%s after AllowBridge: rules %q, want %q", chainName(ch), got, w)
		}
	}
	if out, err := exec.Command("nft", "list", "chain", "ip", "filter", "FORWARD").CombinedOutput(); err == nil {
		t.Logf("nft says:\n%s", out)
		if !strings.Contains(string(out), `iifname "`+br1+`" oifname "`+br1+`" accept`) {
			t.Errorf("nft does not show the rule as iifname/oifname accept")
		}
	}

	// iptables-nft (Docker's usual front end) must still read the chain,
	// and shows our rule as its own kind.
	if v, err := exec.Command("iptables", "-V").Output(); err == nil && strings.Contains(string(v), "nf_tables") {
		out, err := exec.Command("iptables", "-S", "FORWARD").CombinedOutput()
		t.Logf("iptables-nft says:\n%s", out)
		if err != nil || !strings.Contains(string(out), "-A FORWARD -i "+br1+" -o "+br1+" ") {
			t.Errorf("iptables-nft -S FORWARD: %v", err)
		}
	}

	for range 2 {
		if err := fw.RemoveBridge(br1); err != nil {
			t.Fatal(err)
		}
	}
	want = map[*nftables.Chain][]string{
		fwd4:    {ruleTag(br2), "docker"},
		fwd6:    {ruleTag(br2)},
		fwdInet: {ruleTag(br2)},
	}
	for ch, w := range want {
		if got := ruleComments(t, c, ch); strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("%s after RemoveBridge: rules %q, want %q", chainName(ch), got, w)
		}
	}
	if err := fw.RemoveBridge(br2); err != nil {
		t.Fatal(err)
	}
	if got := ruleComments(t, c, fwd4); strings.Join(got, "|") != "docker" {
		t.Errorf("ip filter FORWARD at the end: %q, want only docker's rule", got)
	}
}

// With a legacy x_tables filter table in use, the rule goes in with the
// iptables-legacy binary (when installed).
func TestFirewallLegacyIptables(t *testing.T) {
	nettest.RequireRoot(t)
	bin, err := exec.LookPath("iptables-legacy")
	if err != nil {
		testenv.Skip(t, "iptables-legacy not installed (scripts/install-test-deps.sh installs iptables)")
	}
	prefix := nettest.Prefix(t)
	if !nettest.InNewNetns(t, prefix) {
		return
	}
	if out, err := exec.Command(bin, "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
		t.Fatalf("%s -P FORWARD DROP: %v: %s", bin, err, out)
	}
	names, _ := os.ReadFile("/proc/net/ip_tables_names")
	if !hasLine(names, "filter") {
		t.Fatalf("legacy filter table not in use after iptables-legacy: %q", names)
	}
	br := prefix + "br"
	fw := NewFirewall(nil)
	rule := []string{"-C", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"}
	for range 2 {
		if err := fw.AllowBridge(br); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(bin, rule...).CombinedOutput(); err != nil {
		t.Fatalf("rule missing after AllowBridge: %v: %s", err, out)
	}
	out, _ := exec.Command(bin, "-S", "FORWARD").CombinedOutput()
	if n := strings.Count(string(out), "-i "+br+" -o "+br); n != 1 {
		t.Errorf("%d copies of the rule, want 1:\n%s", n, out)
	}
	if err := fw.RemoveBridge(br); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(bin, rule...).Run(); err == nil {
		t.Errorf("rule still there after RemoveBridge")
	}
}
