package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// netWorld is routedWorld with ACL tables, and checks of what exists for
// restore.
type netWorld struct {
	*routedWorld
	amu    sync.Mutex
	tables map[string]ACLTableSpec
	writes int
}

func (w *netWorld) EnsureACLTable(ctx context.Context, spec ACLTableSpec) (bool, error) {
	w.amu.Lock()
	defer w.amu.Unlock()
	_, had := w.tables[spec.Name]
	w.tables[spec.Name] = spec
	w.writes++
	return !had, nil
}

func (w *netWorld) DeleteACLTable(ctx context.Context, name string) error {
	w.amu.Lock()
	defer w.amu.Unlock()
	delete(w.tables, name)
	return nil
}

func (w *netWorld) ACLReplies(context.Context) string { return "allow-related is a fake" }

var _ ACLs = (*netWorld)(nil)

func (w *netWorld) HasACLTable(ctx context.Context, name string) (bool, error) {
	w.amu.Lock()
	defer w.amu.Unlock()
	_, ok := w.tables[name]
	return ok, nil
}

const routedACL = `  acl:
    switches:
      sw0:
        - {direction: to-lport, priority: 100, match: "ip4.src == 10.0.1.0/24 && icmp4", action: allow}
`

func setupRoutedACL(t *testing.T) (*Engine, *netWorld, api.Deployment) {
	t.Helper()
	rw := newRoutedWorld()
	w := &netWorld{routedWorld: rw, tables: map[string]ACLTableSpec{}}
	e, d := generatedEngine(t, "lab", routedTopo+routedACL, nil, Options{Drivers: guest.NewRegistry(rw.world), Network: w, Concurrency: 2})
	if err := e.Up(context.Background(), d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	return e, w, d
}

func TestPlanRoutersAndACLs(t *testing.T) {
	// The routed topology with its parts replaced: each case is the YAML
	// after up.
	routerWith := func(extra string) string {
		return strings.Replace(routedTopo, "      dhcp: [{switch: sw1}]\n", extra+"      dhcp: [{switch: sw1}]\n", 1)
	}
	cases := []struct {
		name    string
		yaml    string
		changes []string
	}{
		{"same yaml", routedTopo + routedACL, nil},
		{"a static route", routerWith("      static_routes: [{prefix: 0.0.0.0/0, nexthop: 172.30.0.1}]\n") + routedACL,
			[]string{`remake router r1: static_routes none → [{"nexthop":"172.30.0.1","prefix":"0.0.0.0/0"}]`}},
		{"a nat rule", routerWith("      nat: [{nat_type: snat, logical_ip: 10.0.0.0/16, external_ip: 172.30.0.2}]\n") + routedACL,
			[]string{`remake router r1: nat none → [{"external_ip":"172.30.0.2"`}},
		{"dhcp off", strings.Replace(strings.Replace(routedTopo, "      dhcp: [{switch: sw1}]\n", "", 1), "ip: dynamic", "ip: 10.0.1.5", 1) + routedACL,
			[]string{`remake router r1: dhcp [{"gateway":"10.0.1.1"`, "remake guest b: interfaces[0]."}},
		{"an acl drop rule", routedTopo + routedACL + `        - {direction: to-lport, priority: 200, match: "ip4.src == 10.0.0.11", action: drop}` + "\n",
			[]string{`update acl tbos-lab-acl: switches[0].rules[1] none → {"action":"drop","direction":"to-lport","match":"ip4.src == 10.0.0.11","priority":200}`}},
		{"no acls", routedTopo, []string{"remove acl tbos-lab-acl"}},
		{"no router", strings.Replace(strings.Split(routedTopo, "  routers:")[0], "ip: dynamic", "ip: 10.0.1.5", 1) + routedACL, []string{"remove router r1", "remake guest b: interfaces[0]."}},
		{"external no more", strings.Replace(routedTopo, ", external: true", "", 1) + routedACL, []string{"remove external ext"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _, d := setupRoutedACL(t)
			os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(tc.yaml), 0o644)
			p, err := e.Plan(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			got := changes(p)
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], topology.ACLTableName(d.Name), "tbos-lab-acl")
			}
			if len(got) != len(tc.changes) {
				t.Fatalf("changes %q, want %q", got, tc.changes)
			}
			for i, want := range tc.changes {
				if !strings.HasPrefix(got[i], want) {
					t.Errorf("change %d is %q, want %q…", i, got[i], want)
				}
			}
			for _, o := range unchanged(p) {
				if o == "switch ext" && tc.name != "external no more" {
					return
				}
			}
			if tc.name != "no router" && tc.name != "external no more" {
				t.Errorf("the ext switch (a router's only) is not kept: %v", unchanged(p))
			}
		})
	}
}

func TestApplyRoutersAndACLs(t *testing.T) {
	e, w, d := setupRoutedACL(t)
	ctx := context.Background()
	st, _ := e.readState(d)
	ns := st.Routers[0].Namespace
	yaml := strings.Replace(routedTopo, "      dhcp: [{switch: sw1}]\n",
		"      static_routes: [{prefix: 0.0.0.0/0, nexthop: 172.30.0.2}]\n      dhcp: [{switch: sw1}]\n", 1)
	yaml = strings.Replace(yaml, "gateway_ip: 172.30.0.2/24", "gateway_ip: 172.30.0.3/24", 1)
	yaml += routedACL + `        - {direction: to-lport, priority: 200, match: "ip4.src == 10.0.0.11", action: drop}` + "\n"
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(yaml), 0o644)
	// The router goes down and comes back; what tells is the DHCP
	// seeding: b keeps its lease.
	w.rmu.Lock()
	w.served = map[string]map[string]string{}
	w.leased = nil
	w.rmu.Unlock()
	writes := w.writes
	log := &guesttest.Log{}
	if err := e.Apply(ctx, d, log); err != nil {
		t.Fatalf("apply: %v\n%s", err, log.Text())
	}
	text := log.Text()
	aclName := topology.ACLTableName(d.Name)
	for _, want := range []string{"remake router r1", "update acl " + aclName, "remove routers", "router r1: created", "acl: table bridge " + aclName + " rewritten", "guest b: already up"} {
		if !strings.Contains(text, want) {
			t.Errorf("apply log lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "remove guest") || len(w.leased) != 0 {
		t.Errorf("apply touched guests (leases taken %v):\n%s", w.leased, text)
	}
	if !w.routers[ns] || len(w.served[ns]) != 1 {
		t.Errorf("router %v, DHCP seeded with %v, want b's lease", w.routers, w.served)
	}
	tbl := w.tables[aclName]
	if w.writes != writes+1 || len(tbl.Switches) != 1 || len(tbl.Switches[0].Rules) != 2 {
		t.Errorf("acl table after apply (%d writes): %+v", w.writes-writes, tbl)
	}
	if p, err := e.Plan(ctx, d); err != nil || !p.Empty() {
		t.Fatalf("plan after apply: %v, %v", changes(p), err)
	}
	// Taking the ACLs and the router away removes them.
	os.WriteFile(filepath.Join(d.ProjectLocation, "kvm-compose.yaml"), []byte(strings.Replace(strings.Split(routedTopo, "  routers:")[0], "ip: dynamic", "ip: 10.0.1.5", 1)), 0o644)
	if err := e.Apply(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	// The ext switch is still external: its host side stays.
	if len(w.tables) != 0 || w.routers[ns] || !w.externals[externalTable(st)] {
		t.Errorf("after apply without them: tables %v, routers %v, externals %v", w.tables, w.routers, w.externals)
	}
	if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
	if w.objects() != 0 {
		t.Fatalf("down left routers %v, externals %v", w.routers, w.externals)
	}
}

func TestMissingRoutersAndACLs(t *testing.T) {
	e, w, d := setupRoutedACL(t)
	ctx := context.Background()
	if m, err := e.Missing(ctx, d); err != nil || len(m) != 0 {
		t.Fatalf("missing right after up: %v, %v", m, err)
	}
	st, _ := e.readState(d)
	ns := st.Routers[0].Namespace
	w.rmu.Lock()
	w.routers, w.externals, w.served = map[string]bool{}, map[string]bool{}, map[string]map[string]string{}
	w.rmu.Unlock()
	w.amu.Lock()
	w.tables = map[string]ACLTableSpec{}
	w.amu.Unlock()
	m, err := e.Missing(ctx, d)
	want := []string{"acl table " + topology.ACLTableName(d.Name), "router r1: namespace " + ns, "switch ext (external)"}
	if err != nil || !slices.Equal(m, want) {
		t.Fatalf("missing %q, %v; want %q", m, err, want)
	}
	if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if m, _ := e.Missing(ctx, d); len(m) != 0 {
		t.Fatalf("after up: missing %v", m)
	}
	if len(w.served[ns]) != 1 {
		t.Errorf("the router made again serves %v, want b's lease seeded", w.served[ns])
	}
}

func TestNoCapabilityIsInvalid(t *testing.T) {
	for _, err := range []error{ErrNoRouters, ErrNoACLs} {
		if !errors.Is(err, api.ErrInvalid) {
			t.Errorf("%v is not api.ErrInvalid", err)
		}
	}
}

func externalTable(st *topology.State) string {
	for _, sw := range st.Switches {
		if sw.External != nil {
			return sw.External.Table
		}
	}
	return ""
}

// TestCheckRefusesRoutersWithoutTheCapability: up of a routed topology on
// a host whose network has no routers is refused before it is recorded,
// as invalid (422).
func TestCheckRefusesRoutersWithoutTheCapability(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(routedTopo), 0o644)
	w := newWorld()
	e := New(Options{Drivers: guest.NewRegistry(w), Network: w, Concurrency: 2})
	d := api.Deployment{Name: "lab", ProjectLocation: dir}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	err := e.Check(ctx, d, api.StateIsDown, api.Command{Name: api.CmdUp})
	if !errors.Is(err, ErrNoRouters) || !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "router r1") {
		t.Fatalf("Check(up) = %v, want ErrNoRouters naming r1", err)
	}
	if rec, _ := e.Deployed(ctx, d.Name); !rec.empty() {
		t.Fatalf("the refused up recorded %+v", rec.Hosts)
	}
}
