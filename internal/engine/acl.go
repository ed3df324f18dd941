package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

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

// ACLs is the capability of filtering a host's bridges.
type ACLs interface {
	// EnsureACLTable makes the table exactly spec and reports whether it
	// made it (there was none of that name).
	EnsureACLTable(ctx context.Context, spec ACLTableSpec) (created bool, err error)
	// DeleteACLTable removes the table; a missing one is fine.
	DeleteACLTable(ctx context.Context, name string) error
	// HasACLTable reports whether the table exists.
	HasACLTable(ctx context.Context, name string) (bool, error)
	// ACLReplies says how allow-related lets replies through on this
	// host: statefully (conntrack) or by mirrored rules, for the log.
	ACLReplies(ctx context.Context) string
}

// ErrNoACLs: a switch with ACLs is on a host whose network cannot apply
// them.
var ErrNoACLs = api.Categorized(api.ErrInvalid, "the host's network cannot apply ACLs")

// ACLsOf returns the ACLs of host h's network, or an error wrapping
// ErrNoACLs.
func ACLsOf(h Host) (ACLs, error) { return capability[ACLs](h, ErrNoACLs) }

// ACLTableRecord is the ACL table of a deployment on one host, recorded
// before it is made.
type ACLTableRecord struct {
	Switches []string `json:"switches"`
	// Spec is the table as written, for plan to compare; records written
	// before it was kept lack it.
	Spec *ACLTableSpec `json:"spec,omitempty"`
}

// aclKind is the deployment's ACL table on each host.
type aclKind struct{}

var _ kind = aclKind{}

func (aclKind) stage() string { return "acl" }

func (aclKind) held(h *HostRecord) []string { return sortedKeys(h.ACLTables) }

func (aclKind) forget(h *HostRecord, key string) { delete(h.ACLTables, key) }

func (aclKind) removeLimit(*Options) int { return 0 }

func (aclKind) removal(_ removeEnv, _ *HostRecord, name string) removal {
	return removal{
		what: "acl table " + name,
		noun: "table",
		run: func(ctx context.Context, host Host) (string, error) {
			acls, err := ACLsOf(host)
			if err != nil {
				return "", err
			}
			return "removed", acls.DeleteACLTable(ctx, name)
		},
	}
}

func (aclKind) missing(ctx context.Context, c checkEnv, h *HostRecord) ([]gap, error) {
	if len(h.ACLTables) == 0 {
		return nil, nil
	}
	acls, err := ACLsOf(c.host)
	if err != nil {
		return nil, err
	}
	var out []gap
	for _, name := range sortedKeys(h.ACLTables) {
		ok, err := acls.HasACLTable(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("acl table %s: %w", name, err)
		}
		if !ok {
			out = append(out, gap{kind: api.KindACL, name: name, what: "acl table " + name})
		}
	}
	return out, nil
}

// diff compares each host's table by what its rules say. The ports a
// table guards follow the guests (every up writes them afresh), so they are
// not compared: an ACL change is one of rules, apply_deny_all or port
// names. A changed table is rewritten in place by up's acl stage; one no
// longer wanted is removed.
func (aclKind) diff(p *planned, rec *Record, st *topology.State) {
	wanted := aclTableSpecs(st)
	for _, h := range rec.hostNames() {
		for _, name := range sortedKeys(rec.Hosts[h].ACLTables) {
			tr := rec.Hosts[h].ACLTables[name]
			k := hostKey{h, name}
			spec, ok := wanted[h]
			switch {
			case !ok || spec.Name != name:
				p.remove(aclKind{}, k)
				p.change(api.KindACL, k, api.OpRemove, "")
			case tr.Spec == nil:
				p.change(api.KindACL, k, api.OpUpdate, "recorded without its rules: rewritten")
			default:
				if diffs := diffValues(withoutPorts(*tr.Spec), withoutPorts(spec)); len(diffs) > 0 {
					p.change(api.KindACL, k, api.OpUpdate, strings.Join(diffs, "; "))
				} else {
					p.keep(api.KindACL, k)
				}
			}
		}
	}
	for h, spec := range wanted {
		if hr := rec.Hosts[h]; hr != nil {
			if _, ok := hr.ACLTables[spec.Name]; ok {
				continue
			}
		}
		p.change(api.KindACL, hostKey{h, spec.Name}, api.OpAdd, "")
	}
}

// aclTableSpecs are the ACL tables st asks for, by host, as up's acl stage
// writes them: a switch with rules (or any switch, under apply_deny_all)
// on every host that has its bridge.
func aclTableSpecs(st *topology.State) map[string]ACLTableSpec {
	if st.ACL == nil {
		return nil
	}
	onHost := map[string]map[string]bool{}
	for k, sw := range wantedBridges(st) {
		if onHost[k.host] == nil {
			onHost[k.host] = map[string]bool{}
		}
		onHost[k.host][sw] = true
	}
	ports := map[hostKey][]string{}
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			ports[hostKey{g.Host, ifc.Switch}] = append(ports[hostKey{g.Host, ifc.Switch}], ifc.HostName)
		}
	}
	out := map[string]ACLTableSpec{}
	for h, sws := range onHost {
		spec := ACLTableSpec{Name: topology.ACLTableName(st.Deployment)}
		for _, sw := range sortedKeys(sws) {
			rules := st.ACL.Switches[sw]
			if len(rules) == 0 && !st.ACL.DenyAll {
				continue
			}
			s := aclnft.SwitchSpec{Switch: sw, Names: topology.ACLPorts(st, sw), DenyAll: st.ACL.DenyAll, Ports: slices.Sorted(slices.Values(ports[hostKey{h, sw}]))}
			for _, r := range rules {
				s.Rules = append(s.Rules, aclnft.RuleSpec{Direction: r.Direction, Priority: r.Priority, Match: r.Match, Action: r.Action})
			}
			spec.Switches = append(spec.Switches, s)
		}
		if len(spec.Switches) > 0 {
			out[h] = spec
		}
	}
	return out
}

// withoutPorts is spec with no guest ports, for comparing what the rules
// say.
func withoutPorts(spec ACLTableSpec) ACLTableSpec {
	spec.Switches = slices.Clone(spec.Switches)
	for i := range spec.Switches {
		spec.Switches[i].Ports = nil
		if len(spec.Switches[i].Names) == 0 {
			spec.Switches[i].Names = nil
		}
	}
	return spec
}

func (aclKind) upPart(u *upRun) upPart {
	if u.st.ACL == nil {
		return nil
	}
	return &aclUp{u: u}
}

// aclUp writes the ACL tables of one up: each host's table whole, in one
// nftables transaction, from the same specs plan compares.
type aclUp struct {
	u      *upRun
	tables []*placedACL
}

type placedACL struct {
	host Host
	acls ACLs
	spec ACLTableSpec
	// recorded: in the record before this run; started: its item ran.
	recorded, started bool
}

// plan builds each host's table from the switches it carries.
func (a *aclUp) plan(ctx context.Context) (string, error) {
	u := a.u
	specs := aclTableSpecs(u.st)
	rules := 0
	for _, h := range sortedKeys(specs) {
		host, err := u.e.opts.Hosts.Host(h)
		if err != nil {
			return "", fmt.Errorf("network.acl: %w", err)
		}
		acls, err := ACLsOf(host)
		if err != nil {
			return "", fmt.Errorf("network.acl: %w", err)
		}
		for _, sw := range specs[h].Switches {
			rules += len(sw.Rules)
		}
		a.tables = append(a.tables, &placedACL{host: host, acls: acls, spec: specs[h]})
	}
	return fmt.Sprintf("%s, %s", count(rules, "rule"), count(len(a.tables), "table")), nil
}

func (a *aclUp) items() []item {
	u := a.u
	items := make([]item, len(a.tables))
	for i, pa := range a.tables {
		items[i] = func(ctx context.Context) error {
			host, name := pa.host.Name(), pa.spec.Name
			var switches []string
			for _, sw := range pa.spec.Switches {
				switches = append(switches, sw.Switch)
			}
			pa.started = true
			u.led.edit(func(r *Record) {
				h := r.host(host)
				_, pa.recorded = h.ACLTables[name]
				spec := pa.spec
				h.ACLTables[name] = ACLTableRecord{Switches: switches, Spec: &spec}
			})
			if err := u.led.save(ctx); err != nil {
				return err
			}
			what := fmt.Sprintf("acl table %s on %s", name, host)
			forget := func(ctx context.Context) error {
				if err := pa.acls.DeleteACLTable(ctx, name); err != nil {
					return objectError(what, err)
				}
				u.led.edit(func(r *Record) { delete(r.host(host).ACLTables, name) })
				return nil
			}
			created, err := pa.acls.EnsureACLTable(ctx, pa.spec)
			if err != nil {
				if !pa.recorded {
					u.made.add(forget)
				}
				return objectError(what, err)
			}
			if created {
				u.made.add(forget)
			}
			u.log.Printf("    acl: table bridge %s %s for %v%s", name, ifThen(created, "created", "rewritten"), switches, onHost(u.st, host))
			if allowsRelated(pa.spec) {
				u.log.Printf("    acl: %s%s", pa.acls.ACLReplies(ctx), onHost(u.st, host))
			}
			return nil
		}
	}
	return items
}

// forgetUnstarted has nothing to do: an ACL table is recorded by its own
// item, when it starts.
func (a *aclUp) forgetUnstarted(*Record) {}

// allowsRelated reports whether a table has an allow-related rule.
func allowsRelated(spec ACLTableSpec) bool {
	for _, sw := range spec.Switches {
		for _, r := range sw.Rules {
			if r.Action == "allow-related" {
				return true
			}
		}
	}
	return false
}
