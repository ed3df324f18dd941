package engine

import (
	"context"
	"fmt"
	"sort"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/aclnft"
	"github.com/testbedos/testbedos/internal/topology"
)

// A deployment with ACLs has, on every host that carries a switch with
// rules (or any switch, under apply_deny_all), one nftables table of the
// bridge family named topology.ACLTableName. The "acl" stage of up writes
// it whole (aclnft.EnsureTable); down deletes it by the name the
// record holds.

// ACLTableSpec is a host's ACL table, as a plain value for the wire.
type ACLTableSpec = aclnft.TableSpec

// ACLs is what a host's Network implements when it can filter its bridges
// (found with a type assertion, like Tunnels).
type ACLs interface {
	// EnsureACLTable makes the table exactly spec and reports whether it
	// made it (there was none of that name).
	EnsureACLTable(ctx context.Context, spec ACLTableSpec) (created bool, err error)
	// DeleteACLTable removes the table; a missing one is fine.
	DeleteACLTable(ctx context.Context, name string) error
}

// ErrNoACLs: a switch with ACLs is on a host whose network cannot apply
// them.
var ErrNoACLs = api.Categorized(api.ErrInvalid, "the host's network cannot apply ACLs")

// ACLsOf returns the ACLs of host h's network, or an error wrapping
// ErrNoACLs.
func ACLsOf(h Host) (ACLs, error) {
	if a, ok := h.Network().(ACLs); ok {
		return a, nil
	}
	return nil, fmt.Errorf("host %s: %w", h.Name(), ErrNoACLs)
}

// ACLTableRecord is the ACL table of a deployment on one host, recorded
// before it is made.
type ACLTableRecord struct {
	Switches []string `json:"switches"`
	// Spec is the table as written, for plan to compare; records written
	// before it was kept lack it.
	Spec *ACLTableSpec `json:"spec,omitempty"`
}

// aclRun is the acl stage of one up.
type aclRun struct {
	u      *upRun
	tables []placedACL
}

type placedACL struct {
	host Host
	acls ACLs
	spec ACLTableSpec
}

// aclStage is up's stage that writes the ACL tables; only deployments with
// ACLs have it.
func (u *upRun) aclStage() []stage {
	if u.st.ACL == nil {
		return nil
	}
	a := &aclRun{u: u}
	return []stage{{name: "acl", prepare: a.plan, items: a.items, done: u.led.save}}
}

// plan builds each host's table from the switches it carries.
func (a *aclRun) plan(ctx context.Context) (string, error) {
	u := a.u
	name := topology.ACLTableName(u.d.Name)
	byHost := map[string]*placedACL{}
	var order []string
	rules := 0
	for _, b := range u.bridges {
		sw := b.sw.Name
		swRules := u.st.ACL.Switches[sw]
		if len(swRules) == 0 && !u.st.ACL.DenyAll {
			continue
		}
		spec := aclnft.SwitchSpec{Switch: sw, Names: topology.ACLPorts(u.st, sw), DenyAll: u.st.ACL.DenyAll}
		for _, pg := range u.guests {
			if pg.host.Name() != b.host.Name() {
				continue
			}
			for _, ifc := range pg.g.Interfaces {
				if ifc.Switch == sw {
					spec.Ports = append(spec.Ports, ifc.HostName)
				}
			}
		}
		sort.Strings(spec.Ports)
		for _, r := range swRules {
			spec.Rules = append(spec.Rules, aclnft.RuleSpec{Direction: r.Direction, Priority: r.Priority, Match: r.Match, Action: r.Action})
		}
		rules += len(swRules)
		pa := byHost[b.host.Name()]
		if pa == nil {
			acls, err := ACLsOf(b.host)
			if err != nil {
				return "", fmt.Errorf("switch %s has ACLs: %w", sw, err)
			}
			pa = &placedACL{host: b.host, acls: acls, spec: ACLTableSpec{Name: name}}
			byHost[b.host.Name()] = pa
			order = append(order, b.host.Name())
		}
		pa.spec.Switches = append(pa.spec.Switches, spec)
	}
	for _, h := range order {
		a.tables = append(a.tables, *byHost[h])
	}
	return fmt.Sprintf("%s, %s", count(rules, "rule"), count(len(a.tables), "table")), nil
}

func (a *aclRun) items() []item {
	u := a.u
	items := make([]item, len(a.tables))
	for i, pa := range a.tables {
		items[i] = func(ctx context.Context) error {
			host, name := pa.host.Name(), pa.spec.Name
			var switches []string
			for _, sw := range pa.spec.Switches {
				switches = append(switches, sw.Switch)
			}
			var recorded bool
			u.led.edit(func(r *Record) {
				h := r.host(host)
				_, recorded = h.ACLTables[name]
				spec := pa.spec
				h.ACLTables[name] = ACLTableRecord{Switches: switches, Spec: &spec}
			})
			if err := u.led.save(ctx); err != nil {
				return err
			}
			forget := func(ctx context.Context) error {
				if err := pa.acls.DeleteACLTable(ctx, name); err != nil {
					return fmt.Errorf("acl table %s on %s: %w", name, host, err)
				}
				u.led.edit(func(r *Record) { delete(r.host(host).ACLTables, name) })
				return nil
			}
			created, err := pa.acls.EnsureACLTable(ctx, pa.spec)
			if err != nil {
				if !recorded {
					u.made.add(forget)
				}
				return fmt.Errorf("acl table %s on %s: %w", name, host, err)
			}
			if created {
				u.made.add(forget)
			}
			u.log.Printf("    acl: table bridge %s %s for %v%s", name, ifThen(created, "created", "rewritten"), switches, onHost(u.st, host))
			return nil
		}
	}
	return items
}

// aclStage is down's stage that removes the recorded ACL tables.
func (dr *downRun) aclStage() []stage {
	type recorded struct{ host, name string }
	var tables []recorded
	dr.led.view(func(r *Record) {
		for _, h := range dr.hostsOf(r) {
			for name := range r.Hosts[h].ACLTables {
				if !dr.picked(pickACLs, h, name) {
					continue
				}
				tables = append(tables, recorded{h, name})
			}
		}
	})
	if len(tables) == 0 {
		return nil
	}
	items := func() []item {
		out := make([]item, len(tables))
		for i, t := range tables {
			out[i] = func(ctx context.Context) error {
				host, err := dr.e.opts.Hosts.Host(t.host)
				if err != nil {
					return dr.offline(t.host, fmt.Errorf("acl table %s: %w", t.name, err))
				}
				acls, err := ACLsOf(host)
				if err != nil {
					return err
				}
				if err := acls.DeleteACLTable(ctx, t.name); err != nil {
					return dr.offline(t.host, fmt.Errorf("acl table %s: %w", t.name, err))
				}
				dr.led.edit(func(r *Record) { delete(r.host(t.host).ACLTables, t.name) })
				dr.log.Printf("    acl: table bridge %s removed%s", t.name, ifThen(len(tables) > 1, " from "+t.host, ""))
				return nil
			}
		}
		return out
	}
	return []stage{{name: "acl", detail: func() string { return count(len(tables), "table") }, items: items, collect: true, done: dr.led.save}}
}
