package netns

import (
	"context"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// TestDockerHostFirewall plays a host with Docker installed, inside a fresh
// network namespace: bridged IPv4 goes through the forward hook
// (br_netfilter) and an ip filter FORWARD chain drops what it does not
// accept. Guests on one bridge cannot reach each other until AllowBridge,
// and RemoveBridge takes exactly our rules away again.
func TestDockerHostFirewall(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	if !nettest.InNewNetns(t, prefix) {
		return
	}
	ctx := context.Background()
	if err := os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1\n"), 0o644); err != nil {
		testenv.Skipf(t, "br_netfilter not available: %v", err)
	}

	// What Docker sets up, in nftables terms.
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	drop := nftables.ChainPolicyDrop
	filter := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "filter"})
	forward := c.AddChain(&nftables.Chain{
		Name: "FORWARD", Table: filter, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop,
	})
	// Docker's own rules, e.g. accepting traffic out of docker0.
	name := append([]byte("docker0"), 0)
	c.AddRule(&nftables.Rule{Table: filter, Chain: forward, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	handles := func() []uint64 {
		rules, err := c.GetRules(filter, forward)
		if err != nil {
			t.Fatal(err)
		}
		var hs []uint64
		for _, r := range rules {
			hs = append(hs, r.Handle)
		}
		return hs
	}
	dockers := handles()

	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 2}
	if _, err := bridge.Ensure(ctx, p.Bridge); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bridge.Delete(ctx, p.Bridge) })
	st := stateFor(p)
	d := New(Options{})
	upGuests(t, d, st, &guesttest.Log{})
	dst, _, _ := net.ParseCIDR(p.Address(1))

	if err := nettest.Ping(p.Namespace(0), dst, time.Second); err == nil {
		t.Fatal("ping got through a FORWARD policy of drop: the scenario does not reproduce a Docker host")
	}

	fw := bridge.NewFirewall(nil)
	t.Cleanup(func() { _ = fw.RemoveBridge(p.Bridge) })
	if err := fw.AllowBridge(p.Bridge); err != nil {
		t.Fatal(err)
	}
	if err := nettest.Ping(p.Namespace(0), dst, 3*time.Second); err != nil {
		t.Fatalf("after AllowBridge: %v", err)
	}
	if got := handles(); len(got) != len(dockers)+1 {
		t.Errorf("rules after AllowBridge: %v, want Docker's %v and ours", got, dockers)
	}

	if err := fw.RemoveBridge(p.Bridge); err != nil {
		t.Fatal(err)
	}
	if got := handles(); !slices.Equal(got, dockers) {
		t.Errorf("rules after RemoveBridge: %v, want Docker's %v untouched", got, dockers)
	}
	if err := nettest.Ping(p.Namespace(0), dst, time.Second); err == nil {
		t.Errorf("ping still gets through after RemoveBridge")
	}
}
