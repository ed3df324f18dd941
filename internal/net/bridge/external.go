package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nftexpr"
	"github.com/testbedos/testbedos/internal/topology"
)

// An external switch gets the host's side: an address on its bridge (the
// next hop its router's default route names), and a table of the
// deployment in the host's namespace that masquerades the switch's subnet
// out of any other interface (the host's default route) and accepts its
// forwarded traffic. Where other forward chains drop by default (Docker's),
// tagged accept rules for the bridge go into them too, removed with the
// table.

// EnsureExternal sets up the host's side of an external switch and reports
// whether it made it (the table was missing).
func (f *Firewall) EnsureExternal(ctx context.Context, sw topology.Switch) (created bool, err error) {
	x := sw.External
	if x == nil {
		return false, fmt.Errorf("switch %s is not external", sw.Name)
	}
	subnet, err := netip.ParsePrefix(sw.Subnet)
	if err != nil || !subnet.Addr().Is4() {
		return false, fmt.Errorf("switch %s: subnet %q: IPv4 only", sw.Name, sw.Subnet)
	}
	exists, err := tableExists(x.Table)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil && !exists {
			err = errors.Join(err, f.DeleteExternal(context.WithoutCancel(ctx), sw))
		}
	}()
	br, err := netlink.LinkByName(sw.Bridge)
	if err != nil {
		return false, fmt.Errorf("switch %s: bridge %s: %w", sw.Name, sw.Bridge, err)
	}
	addr, err := netlink.ParseAddr(x.Address)
	if err != nil {
		return false, err
	}
	// Pin the bridge's MAC: a bridge otherwise takes the lowest MAC of its
	// ports, and on a provider network shared by deployments the first
	// one's down would change the host side's MAC under the others' ARP
	// caches.
	if err := netlink.LinkSetHardwareAddr(br, br.Attrs().HardwareAddr); err != nil {
		return false, fmt.Errorf("switch %s: pin the MAC of %s: %w", sw.Name, sw.Bridge, err)
	}
	if err := netlink.AddrReplace(br, addr); err != nil {
		return false, fmt.Errorf("switch %s: address %s on %s: %w", sw.Name, x.Address, sw.Bridge, err)
	}
	// Masquerading out needs the host to forward; it stays on after down
	// (other users of the host may rely on it by then).
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		return false, fmt.Errorf("enable IP forwarding on the host: %w", err)
	}
	if !exists {
		if err := writeExternalTable(x.Table, sw.Bridge, subnet); err != nil {
			return false, fmt.Errorf("switch %s: %w", sw.Name, err)
		}
	}
	if err := f.allowExternal(sw.Bridge); err != nil {
		return false, fmt.Errorf("switch %s: %w", sw.Name, err)
	}
	return !exists, nil
}

// DeleteExternal removes what EnsureExternal made; what is missing is fine.
func (f *Firewall) DeleteExternal(ctx context.Context, sw topology.Switch) error {
	x := sw.External
	if x == nil {
		return nil
	}
	var errs []error
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	if ok, err := tableExists(x.Table); err != nil {
		errs = append(errs, err)
	} else if ok {
		conn.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: x.Table})
		if err := conn.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("delete table %s: %w", x.Table, err))
		}
	}
	errs = append(errs, f.removeExternal(sw.Bridge))
	if br, err := netlink.LinkByName(sw.Bridge); err == nil {
		if addr, err := netlink.ParseAddr(x.Address); err == nil {
			if err := netlink.AddrDel(br, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove %s from %s: %w", x.Address, sw.Bridge, err))
			}
		}
	}
	return errors.Join(errs...)
}

func tableExists(name string) (bool, error) {
	conn, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("open nftables connection: %w", err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}

// writeExternalTable: postrouting "ip saddr SUBNET oifname != BR
// masquerade"; forward "iifname BR accept" and "oifname BR accept".
func writeExternalTable(table, bridge string, subnet netip.Prefix) error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	t := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: table})
	post := conn.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	masq := append(nftexpr.MatchPrefix(12, subnet), nftexpr.IfnameIsNot(expr.MetaKeyOIFNAME, bridge)...)
	masq = append(masq, &expr.Masq{})
	conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: masq})
	accept := nftables.ChainPolicyAccept
	fwd := conn.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	for _, key := range []expr.MetaKey{expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME} {
		conn.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: append(nftexpr.IfnameIs(key, bridge), &expr.Verdict{Kind: expr.VerdictAccept})})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write table %s: %w", table, err)
	}
	return nil
}

func externalTag(bridge string) string { return "testbedos: external bridge " + bridge }

// allowExternal puts "iifname BR accept" and "oifname BR accept", tagged,
// at the top of every other forward chain (ours is skipped: it has them).
func (f *Firewall) allowExternal(bridge string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	conn, chains, err := forwardChains()
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	tag := externalTag(bridge)
	var errs []error
	for _, ch := range chains {
		if ch.Table.Family != nftables.TableFamilyIPv4 && ch.Table.Family != nftables.TableFamilyINet {
			continue
		}
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			errs = append(errs, fmt.Errorf("list rules of %s: %w", chainName(ch), err))
			continue
		}
		if len(taggedRules(rules, tag)) > 0 || isExternalTable(ch.Table.Name) {
			continue
		}
		for _, key := range []expr.MetaKey{expr.MetaKeyOIFNAME, expr.MetaKeyIIFNAME} {
			conn.InsertRule(&nftables.Rule{Table: ch.Table, Chain: ch,
				Exprs:    append(nftexpr.IfnameIs(key, bridge), &expr.Verdict{Kind: expr.VerdictAccept}),
				UserData: userdata.AppendString(nil, userdata.TypeComment, tag)})
		}
		if err := conn.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("accept external bridge %s in %s: %w", bridge, chainName(ch), err))
		}
	}
	return errors.Join(errs...)
}

func (f *Firewall) removeExternal(bridge string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	conn, chains, err := forwardChains()
	if err != nil {
		return err
	}
	defer conn.CloseLasting()
	tag := externalTag(bridge)
	var errs []error
	for _, ch := range chains {
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ours := taggedRules(rules, tag)
		for _, r := range ours {
			errs = append(errs, conn.DelRule(r))
		}
		if len(ours) > 0 {
			errs = append(errs, conn.Flush())
		}
	}
	return errors.Join(errs...)
}

// isExternalTable: a table an external switch of some deployment owns
// (<prefix>e<hash>, see topology.ExternalTable).
func isExternalTable(name string) bool {
	return len(name) == 14 && name[:2] == "tb" && name[7] == 'e'
}

// HasExternal reports whether the host's side of external switch sw is
// there: its table and the address on the bridge.
func HasExternal(ctx context.Context, sw topology.Switch) (bool, error) {
	if sw.External == nil {
		return true, nil
	}
	ok, err := tableExists(sw.External.Table)
	if err != nil || !ok {
		return false, err
	}
	br, err := netlink.LinkByName(sw.Bridge)
	if links.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up bridge %s: %w", sw.Bridge, err)
	}
	want, err := netip.ParsePrefix(sw.External.Address)
	if err != nil {
		return false, err
	}
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", sw.Bridge, err)
	}
	for _, a := range addrs {
		if p, ok := netip.AddrFromSlice(a.IP.To4()); ok && p == want.Addr() {
			return true, nil
		}
	}
	return false, nil
}
