package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/topology"
)

// ovnState is a router between two switches, serving DHCP on one, with a
// static and a dynamic guest and an ACL.
func ovnState() *topology.State {
	return &topology.State{
		Deployment: "lab", Prefix: "tbx",
		Hosts:    []topology.Host{{Name: "main", Main: true}},
		Switches: []topology.Switch{{Name: "sw0", Subnet: "10.0.0.0/24", Bridge: "tbxsw0"}, {Name: "sw1", Subnet: "10.0.1.0/24", Bridge: "tbxsw1"}},
		Guests: []topology.Guest{
			{Name: "Web", Host: "main", Interfaces: []topology.Interface{{Switch: "sw0", Bridge: "tbxsw0", HostName: "tbxweb0", Address: "10.0.0.10/24", MAC: "02:00:00:00:00:10"}}},
			{Name: "db", Host: "main", Interfaces: []topology.Interface{{Switch: "sw1", Bridge: "tbxsw1", HostName: "tbxdb0", MAC: "02:00:00:00:01:20", Dynamic: true}}},
		},
		Routers: []topology.Router{{
			Name: "r1", Host: "main", Namespace: "tbos.lab.router.r1",
			Ports: []topology.RouterPort{
				{Name: "r1-sw0", Switch: "sw0", HostName: "tbxr1p0", IfName: "p0", Address: "10.0.0.1/24", MAC: "02:00:00:00:ff:00"},
				{Name: "r1-sw1", Switch: "sw1", HostName: "tbxr1p1", IfName: "p1", Address: "10.0.1.1/24", MAC: "02:00:00:00:ff:01"},
			},
			StaticRoutes: []topology.StaticRoute{{Prefix: "0.0.0.0/0", Nexthop: "10.0.1.254"}},
			NAT:          []topology.NATRule{{Type: "snat", LogicalIP: "10.0.0.0/24", ExternalIP: "10.0.1.1", OutPort: "p1"}},
			DHCP:         []topology.DHCPPool{{Switch: "sw1", IfName: "p1", Gateway: "10.0.1.1", Subnet: "10.0.1.0/24", ExcludeFrom: "10.0.1.1", ExcludeTo: "10.0.1.9"}},
		}},
		ACL: &topology.ACL{Switches: map[string][]topology.ACLRule{"sw0": {{Direction: "to-lport", Priority: 100, Match: "tcp.dst == 22", Action: "reject"}}}},
	}
}

// The logical network is what the state says, in OVN's terms: guests'
// ports with "MAC IP" or "MAC dynamic", router-type ports peered with
// the router's ports, DHCP options from the router's port, every guest
// name in DNS, NAT's port a gateway port on the chassis, ACLs as written.
func TestOVNSpecs(t *testing.T) {
	st := ovnState()
	sws := ovnSwitches(st, "")
	sw1 := sws["tbxsw1"].Spec
	if sws["tbxsw1"].Object != "sw1" || sw1.ExcludeIPs != "10.0.1.1..10.0.1.9" || sw1.Subnet != "10.0.1.0/24" || !sw1.HostPort {
		t.Errorf("sw1: %+v", sws["tbxsw1"])
	}
	wantPorts := []ovn.PortSpec{
		{Name: "tbxdb0", Addresses: []string{"02:00:00:00:01:20 dynamic"}, DHCP: true},
		{Name: "tbxr1p1", Type: "router", Addresses: []string{"router"}, Options: map[string]string{"router-port": "lrp-tbxr1p1"}},
	}
	if !reflect.DeepEqual(sw1.Ports, wantPorts) {
		t.Errorf("sw1 ports: %+v", sw1.Ports)
	}
	if sw1.DHCP == nil || sw1.DHCP.CIDR != "10.0.1.0/24" || sw1.DHCP.Options["router"] != "10.0.1.1" || sw1.DHCP.Options["server_mac"] != "02:00:00:00:ff:01" || sw1.DHCP.Options["dns_server"] != "10.0.1.1" {
		t.Errorf("sw1 DHCP: %+v", sw1.DHCP)
	}
	if sw0 := sws["tbxsw0"].Spec; sw0.DHCP != nil || sw0.Ports[0].Addresses[0] != "02:00:00:00:00:10 10.0.0.10" || sw0.Ports[0].DHCP {
		t.Errorf("sw0: %+v", sw0)
	}
	if !reflect.DeepEqual(sw1.DNS, map[string]string{"web": "10.0.0.10"}) {
		t.Errorf("DNS: %v (the dynamic guest has no static name)", sw1.DNS)
	}
	if !reflect.DeepEqual(sw1.DynamicDNS, map[string]string{"tbxdb0": "db"}) || !reflect.DeepEqual(sws["tbxsw0"].Spec.DynamicDNS, sw1.DynamicDNS) {
		t.Errorf("dynamic DNS: %v (every switch names the dynamic guest's port)", sw1.DynamicDNS)
	}

	r := ovnRouters(st, "main")["tbos.lab.router.r1"].Spec
	if len(r.Ports) != 2 || r.Ports[0].GatewayChassis != "" || r.Ports[1].GatewayChassis != "main" || r.Ports[1].Name != "lrp-tbxr1p1" {
		t.Errorf("router ports: %+v", r.Ports)
	}
	if !reflect.DeepEqual(r.NAT, []ovn.NATSpec{{Type: "snat", ExternalIP: "10.0.1.1", LogicalIP: "10.0.0.0/24"}}) || r.Routes[0].Nexthop != "10.0.1.254" {
		t.Errorf("router: %+v", r)
	}

	acls := ovnACLs(st, "")
	if len(acls) != 1 || !reflect.DeepEqual(acls["tbxsw0"].Spec, []ovn.ACLSpec{{Direction: "to-lport", Priority: 100, Match: "tcp.dst == 22", Action: "reject"}}) {
		t.Errorf("ACLs: %+v", acls)
	}
	st.ACL.DenyAll = true
	if got := len(ovnACLs(st, "")["tbxsw1"].Spec); got != 2 {
		t.Errorf("apply_deny_all: %d rules on sw1, want one each way", got)
	}
}

// A record holding only OVN objects is not empty, whatever the engine's
// backend, and plan compares its objects with the state: kept when the
// same (the chassis apart), rewritten when changed, removed when gone.
func TestOVNRecordAndPlan(t *testing.T) {
	st := ovnState()
	rec := &Record{Deployment: "lab"}
	h := rec.host("main")
	h.OVNSwitches = ovnSwitches(st, "")
	h.OVNRouters = ovnRouters(st, "chassis-1")
	h.OVNACLs = ovnACLs(st, "")
	if rec.empty() {
		t.Fatal("a record of OVN objects is empty")
	}
	if got := rec.summary(); got != "2 switches, 1 router, 1 acl" {
		t.Errorf("summary %q", got)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back.Hosts["main"].OVNRouters, h.OVNRouters) {
		t.Fatalf("record round trip: %v", err)
	}

	p := diffPlan(BackendOVN, rec, st, nil, true)
	for _, c := range p.plan.Changes {
		if c.Kind != api.KindGuest { // the record has no guests
			t.Errorf("unchanged state: change %+v", c)
		}
	}
	st.ACL = nil
	st.Guests[0].Interfaces[0].Address = "10.0.0.11/24"
	p = diffPlan(BackendOVN, rec, st, nil, true)
	got := map[string]string{}
	for _, c := range p.plan.Changes {
		got[string(c.Kind)+" "+c.Name] = string(c.Op)
	}
	for k, op := range map[string]string{"switch sw0": "update", "acl sw0": "remove"} {
		if got[k] != op {
			t.Errorf("plan: %s is %q, want %q (all: %v)", k, got[k], op, got)
		}
	}
	if _, ok := got["router r1"]; ok {
		t.Errorf("plan changes the router: %v", got)
	}
}

// The ovn backend refuses, before up is recorded, a main whose network has
// no OVN (422); a guest on a client is no longer refused (the client binds
// it on its own chassis).
func TestOVNCapabilities(t *testing.T) {
	e := New(Options{Backend: BackendOVN, HostName: "main", Network: newWorld()})
	st := ovnState()
	if err := e.checkCapabilities(st); !errors.Is(err, ErrNoOVN) || !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a main without OVN: %v", err)
	}
}

// A router port naming its gateway chassis (set_gateway_chassis) is the
// router's gateway port on that host's chassis; one NAT goes out of, on
// the main's.
func TestOVNGatewayChassis(t *testing.T) {
	st := ovnState()
	st.Hosts = append(st.Hosts, topology.Host{Name: "c1"})
	st.Routers[0].Ports[0].GatewayChassis = "c1"
	r := ovnRouters(st, "main-chassis")["tbos.lab.router.r1"].Spec
	if r.Ports[0].GatewayChassis != "c1" || r.Ports[1].GatewayChassis != "main-chassis" {
		t.Errorf("gateway chassis: %+v", r.Ports)
	}
	st.Routers[0].Ports[0].GatewayChassis = "main"
	if r := ovnRouters(st, "main-chassis")["tbos.lab.router.r1"].Spec; r.Ports[0].GatewayChassis != "main-chassis" {
		t.Errorf("the main named: %+v", r.Ports)
	}
}

// With ovn, up's stages are those of the kinds the state has: a lab with
// no router and no ACL has no routers or acl stage ("[4/8] routers: 0
// routers" was printed before).
func TestOVNUpStagesOnlyWhatTheStateHas(t *testing.T) {
	e := New(Options{Backend: BackendOVN})
	stageNames := func(st *topology.State) string {
		var names []string
		for _, s := range (&upRun{e: e, st: st}).stages() {
			names = append(names, s.name)
		}
		return strings.Join(names, " ")
	}
	st := ovnState()
	if got, want := stageNames(st), "init hosts network routers acl guests setup end"; got != want {
		t.Errorf("stages with a router and ACLs: %q, want %q", got, want)
	}
	st.Routers, st.ACL = nil, nil
	if got, want := stageNames(st), "init hosts network guests setup end"; got != want {
		t.Errorf("stages without: %q, want %q", got, want)
	}
}

// A switch on a provider network of the host (a localnet port naming
// host.json's bridge mapping) is a logical switch of the deployment's own
// whose localnet port names the network; the bridge is the host's mapped
// one, resolved by the host's OVN.
func TestOVNProviderSwitch(t *testing.T) {
	st := ovnState()
	st.Switches = append(st.Switches, topology.Switch{Name: "pub", Subnet: "172.16.1.0/24", Bridge: topology.ProviderBridgeName("public"),
		External: &topology.ExternalSide{Address: "172.16.1.1/24", Table: topology.ProviderTable("public"), Host: "main", Provider: "public"}})
	ls := topology.BridgeName("lab", "pub")
	got, ok := ovnSwitches(st, "")[ls]
	if !ok {
		t.Fatalf("no logical switch %s (the deployment's own) for the provider switch", ls)
	}
	if p := got.Spec.Provider; p == nil || *p != (ovn.ProviderSpec{Network: "public", Own: true, Shared: true}) {
		t.Errorf("provider: %+v", p)
	}
	st.Deployment = "other"
	if _, ok := ovnSwitches(st, "")[topology.BridgeName("other", "pub")]; !ok {
		t.Error("a second lab on public does not get a logical switch of its own")
	}
}

// A lab's down keeps the provider network (its mapped bridge and the
// host's side) while another deployment's switch on the same network is
// recorded, and removes it with the last one.
func TestOVNKeepsSharedProvider(t *testing.T) {
	st := ovnState()
	st.Switches = append(st.Switches, topology.Switch{Name: "pub", Subnet: "172.16.1.0/24", Bridge: topology.ProviderBridgeName("public"),
		External: &topology.ExternalSide{Address: "172.16.1.1/24", Table: topology.ProviderTable("public"), Host: "main", Provider: "public"}})
	spec := ovnSwitches(st, "")[topology.BridgeName("lab", "pub")].Spec
	other := &HostRecord{OVNSwitches: map[string]OVNRecord[ovn.SwitchSpec]{"x": {Object: "pub", Spec: spec}}}
	for _, c := range []struct {
		holder *HostRecord
		kept   bool
	}{{other, true}, {&HostRecord{}, false}} {
		env := removeEnv{log: lineLog{}, otherHolder: func(_ context.Context, host string, holds func(*HostRecord) bool) (string, error) {
			if host == "main" && holds(c.holder) {
				return "other", nil
			}
			return "", nil
		}}
		got, err := keepSharedProvider(context.Background(), env, "main", spec)
		if err != nil {
			t.Fatal(err)
		}
		if kept := got.Provider == nil && got.External == nil; kept != c.kept {
			t.Errorf("another lab on public %v: provider %+v, external %v", c.kept, got.Provider, got.External != nil)
		}
	}
}

// lineLog is an action's log that keeps nothing.
type lineLog struct{}

func (lineLog) Printf(string, ...any) {}
func (lineLog) Writer(string) io.WriteCloser {
	r, w := io.Pipe()
	go io.Copy(io.Discard, r)
	return w
}
