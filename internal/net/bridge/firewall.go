package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"github.com/testbedos/testbedos/internal/net/links"
)

// Firewall lets traffic between the ports of our own bridges through the
// host's forward filtering.
//
// On hosts with Docker the FORWARD policy is drop and br_netfilter hands
// bridged frames to the IP hooks, so guests on one bridge cannot reach each
// other; the per-bridge nf_call_iptables knob does not help while the global
// sysctl is on. AllowBridge therefore inserts "iifname BR oifname BR accept"
// at the top of every forward base chain of the ip, ip6 and inet families,
// tagged with a comment so RemoveBridge deletes exactly those rules. When the
// legacy x_tables filter table is in use too, the same rule goes in through
// the iptables binary. Nothing is done where no forward chain exists.
type Firewall struct {
	log *slog.Logger
	// mu serialises the look-then-change sequences of this process.
	mu sync.Mutex
	// legacy finds and runs the iptables binaries; replaced in tests.
	legacy legacyTables
}

// NewFirewall returns a Firewall that reports what it changes to log
// (nil discards).
func NewFirewall(log *slog.Logger) *Firewall {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Firewall{log: log, legacy: systemLegacyTables{}}
}

// ruleTag is the comment on our rules; nft list ruleset shows it.
func ruleTag(bridge string) string { return "testbedos: allow bridge " + bridge }

// AllowBridge lets traffic in and out of bridge pass every forward chain.
// Calling it again for the same bridge adds nothing.
func (f *Firewall) AllowBridge(bridge string) error {
	if err := links.CheckName(bridge); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	errNft := f.allowNft(bridge)
	errLegacy := f.legacy.allow(f.log, bridge)
	return errors.Join(errNft, errLegacy)
}

// RemoveBridge deletes the rules AllowBridge added for bridge. Calling it when
// there are none is fine.
func (f *Firewall) RemoveBridge(bridge string) error {
	if err := links.CheckName(bridge); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	errNft := f.removeNft(bridge)
	errLegacy := f.legacy.remove(f.log, bridge)
	return errors.Join(errNft, errLegacy)
}

func (f *Firewall) allowNft(bridge string) error {
	conn, chains, err := forwardChains()
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	tag := ruleTag(bridge)
	var errs []error
	for _, ch := range chains {
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			errs = append(errs, fmt.Errorf("list rules of %s: %w", chainName(ch), err))
			continue
		}
		if len(taggedRules(rules, tag)) > 0 {
			continue
		}
		// Without a position the kernel puts the rule first in the chain.
		conn.InsertRule(&nftables.Rule{
			Table:    ch.Table,
			Chain:    ch,
			Exprs:    acceptBridgeExprs(bridge),
			UserData: userdata.AppendString(nil, userdata.TypeComment, tag),
		})
		// One transaction per chain, so a table we may not touch (an owned
		// table, say) does not keep the others from getting their rule.
		if err := conn.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("insert accept rule for %s into %s: %w", bridge, chainName(ch), err))
			continue
		}
		f.log.Info("firewall: accepting forwarded traffic within bridge", "bridge", bridge, "chain", chainName(ch))
	}
	return errors.Join(errs...)
}

func (f *Firewall) removeNft(bridge string) error {
	conn, chains, err := forwardChains()
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	tag := ruleTag(bridge)
	var errs []error
	for _, ch := range chains {
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			errs = append(errs, fmt.Errorf("list rules of %s: %w", chainName(ch), err))
			continue
		}
		ours := taggedRules(rules, tag)
		if len(ours) == 0 {
			continue
		}
		for _, r := range ours {
			if err := conn.DelRule(r); err != nil {
				errs = append(errs, err)
			}
		}
		if err := conn.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("delete accept rules for %s from %s: %w", bridge, chainName(ch), err))
			continue
		}
		f.log.Info("firewall: removed accept rule", "bridge", bridge, "chain", chainName(ch), "rules", len(ours))
	}
	return errors.Join(errs...)
}

// forwardChains opens a connection and lists the base chains hooked at
// forward in the families that see bridged IP traffic.
func forwardChains() (*nftables.Conn, []*nftables.Chain, error) {
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, nil, fmt.Errorf("open nftables connection: %w", err)
	}
	all, err := conn.ListChains()
	if err != nil {
		conn.CloseLasting()
		return nil, nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var chains []*nftables.Chain
	for _, ch := range all {
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward {
			continue
		}
		switch ch.Table.Family {
		case nftables.TableFamilyIPv4, nftables.TableFamilyIPv6, nftables.TableFamilyINet:
			chains = append(chains, ch)
		}
	}
	return conn, chains, nil
}

// acceptBridgeExprs is "iifname BR oifname BR accept". The names are compared
// with their terminating NUL, as iptables-nft does for "-i BR -o BR", so
// iptables-nft can still show chains holding our rule.
func acceptBridgeExprs(bridge string) []expr.Any {
	name := append([]byte(bridge), 0)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

func taggedRules(rules []*nftables.Rule, tag string) []*nftables.Rule {
	var ours []*nftables.Rule
	for _, r := range rules {
		if c, ok := comment(r.UserData); ok && c == tag {
			ours = append(ours, r)
		}
	}
	return ours
}

func chainName(ch *nftables.Chain) string {
	family := map[nftables.TableFamily]string{
		nftables.TableFamilyIPv4: "ip",
		nftables.TableFamilyIPv6: "ip6",
		nftables.TableFamilyINet: "inet",
	}[ch.Table.Family]
	if family == "" {
		family = fmt.Sprintf("family(%d)", ch.Table.Family)
	}
	return family + " " + ch.Table.Name + " " + ch.Name
}

// comment returns the comment stored in rule user data (a sequence of
// type, length, value records, as libnftnl writes them). Malformed data
// from other tools yields no comment rather than a panic.
func comment(udata []byte) (string, bool) {
	for len(udata) >= 2 {
		typ, n := userdata.Type(udata[0]), int(udata[1])
		if len(udata) < 2+n {
			return "", false
		}
		if typ == userdata.TypeComment {
			return strings.TrimSuffix(string(udata[2:2+n]), "\x00"), true
		}
		udata = udata[2+n:]
	}
	return "", false
}
