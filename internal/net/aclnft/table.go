package aclnft

import (
	"context"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"

	"github.com/testbedos/testbedos/internal/net/links"
)

// EnsureTable makes the deployment's ACL table exactly spec, replacing
// a table of that name in one transaction, and reports whether it made it
// (there was none before). Where conntrack sees bridged traffic and a
// switch has allow-related rules, the inet table of the same name that
// marks tracked replies is written in the same transaction (replies.go).
func EnsureTable(ctx context.Context, spec TableSpec) (created bool, err error) {
	created, _, err = EnsureTableReplies(ctx, spec)
	return created, err
}

// EnsureTableReplies is EnsureTable, also saying how allow-related lets
// replies through in the table written: statefully where conntrack sees
// bridged traffic, unless the kernel refuses the inet table (then the
// stateless mirror, written instead).
func EnsureTableReplies(ctx context.Context, spec TableSpec) (created bool, rep Replies, err error) {
	rep = TrackedReplies()
	created, err = writeTable(ctx, spec, rep)
	if err != nil && rep.Any() && ctx.Err() == nil {
		if created, err2 := writeTable(ctx, spec, Replies{}); err2 == nil {
			return created, Replies{}, nil
		}
	}
	return created, rep, err
}

// writeTable writes the tables of spec with the replies of the families
// rep says conntrack sees tracked, the others mirrored.
func writeTable(ctx context.Context, spec TableSpec, rep Replies) (created bool, err error) {
	if err := checkTableName(spec.Name); err != nil {
		return false, err
	}
	related := false
	type chains struct{ from, to [][]expr.Any }
	compiled := make([]chains, len(spec.Switches))
	for i, sw := range spec.Switches {
		for _, p := range sw.Ports {
			if err := links.CheckName(p); err != nil {
				return false, err
			}
		}
		if compiled[i].from, compiled[i].to, err = compileACLSwitch(sw, rep); err != nil {
			return false, err
		}
		for _, r := range sw.Rules {
			related = related || r.Action == "allow-related"
		}
	}
	conn, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("open nftables connection: %w", err)
	}
	exists, err := hasBridgeTable(conn, spec.Name)
	if err != nil {
		return false, err
	}
	table := &nftables.Table{Family: nftables.TableFamilyBridge, Name: spec.Name}
	if exists {
		conn.DelTable(table)
	}
	inet := &nftables.Table{Family: nftables.TableFamilyINet, Name: spec.Name}
	hasInet, err := hasTable(conn, inet)
	if err != nil {
		return false, err
	}
	if hasInet {
		conn.DelTable(inet)
	}
	if related && rep.Any() {
		addRepliesTable(conn, spec.Name)
	}
	conn.AddTable(table)
	accept := nftables.ChainPolicyAccept
	fwd := conn.AddChain(&nftables.Chain{Table: table, Name: "forward", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: aclChainPriority, Policy: &accept})
	for i, sw := range spec.Switches {
		from := conn.AddChain(&nftables.Chain{Table: table, Name: "from-" + sw.Switch})
		to := conn.AddChain(&nftables.Chain{Table: table, Name: "to-" + sw.Switch})
		for _, p := range sw.Ports {
			conn.AddRule(&nftables.Rule{Table: table, Chain: fwd, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(p)},
				&expr.Verdict{Kind: expr.VerdictJump, Chain: from.Name},
			}})
			conn.AddRule(&nftables.Rule{Table: table, Chain: fwd, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(p)},
				&expr.Verdict{Kind: expr.VerdictJump, Chain: to.Name},
			}})
		}
		for _, ex := range compiled[i].from {
			conn.AddRule(bridgeRule(table, from, ex))
		}
		for _, ex := range compiled[i].to {
			conn.AddRule(bridgeRule(table, to, ex))
		}
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("write nftables table bridge %s: %w", spec.Name, err)
	}
	return !exists, nil
}

// bridgeRule is a rule of the bridge table; the one that lets tracked
// replies through carries repliesComment.
func bridgeRule(t *nftables.Table, ch *nftables.Chain, ex []expr.Any) *nftables.Rule {
	r := &nftables.Rule{Table: t, Chain: ch, Exprs: ex}
	if isTrackedReply(ex) {
		r.UserData = userdata.AppendString(nil, userdata.TypeComment, repliesComment)
	}
	return r
}

// isTrackedReply reports whether ex reads the packet mark: only the rule
// of trackedReplyExprs does.
func isTrackedReply(ex []expr.Any) bool {
	m, ok := ex[0].(*expr.Meta)
	return ok && m.Key == expr.MetaKeyMARK && !m.SourceRegister
}

// DeleteTable removes the table, and the inet table of tracked replies
// with it; a missing one is fine.
func DeleteTable(ctx context.Context, name string) error {
	if err := checkTableName(name); err != nil {
		return err
	}
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	deleted := false
	for _, t := range []*nftables.Table{
		{Family: nftables.TableFamilyBridge, Name: name},
		{Family: nftables.TableFamilyINet, Name: name},
	} {
		exists, err := hasTable(conn, t)
		if err != nil {
			return err
		}
		if exists {
			conn.DelTable(t)
			deleted = true
		}
	}
	if !deleted {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("delete nftables table %s: %w", name, err)
	}
	return nil
}

// HasTable reports whether the bridge-family table exists, with the inet
// table of tracked replies when the bridge table relies on it.
func HasTable(ctx context.Context, name string) (bool, error) {
	conn, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("open nftables connection: %w", err)
	}
	bridge := &nftables.Table{Family: nftables.TableFamilyBridge, Name: name}
	if ok, err := hasTable(conn, bridge); err != nil || !ok {
		return false, err
	}
	if ok, err := hasTable(conn, &nftables.Table{Family: nftables.TableFamilyINet, Name: name}); err != nil || ok {
		return ok, err
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return false, fmt.Errorf("list nftables bridge chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != name {
			continue
		}
		rules, err := conn.GetRules(bridge, ch)
		if err != nil {
			return false, fmt.Errorf("list rules of bridge %s %s: %w", name, ch.Name, err)
		}
		for _, r := range rules {
			if len(r.Exprs) > 0 && isTrackedReply(r.Exprs) {
				return false, nil
			}
		}
	}
	return true, nil
}

func hasBridgeTable(conn *nftables.Conn, name string) (bool, error) {
	return hasTable(conn, &nftables.Table{Family: nftables.TableFamilyBridge, Name: name})
}

// hasTable reports whether table t (its family and name) exists.
func hasTable(conn *nftables.Conn, t *nftables.Table) (bool, error) {
	tables, err := conn.ListTablesOfFamily(t.Family)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, have := range tables {
		if have.Name == t.Name {
			return true, nil
		}
	}
	return false, nil
}

func checkTableName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w: nftables table name %q", ErrACL, name)
	}
	return nil
}
