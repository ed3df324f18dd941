package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// tunnelNet is a fake host network that can also make tunnels.
type tunnelNet struct {
	*world
	mu      sync.Mutex
	tunnels map[string]TunnelSpec
	ensured int
	fail    bool
}

func (n *tunnelNet) EnsureTunnel(ctx context.Context, spec TunnelSpec) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail {
		return false, errors.New("no vxlan here")
	}
	n.ensured++
	_, found := n.tunnels[spec.Name]
	n.tunnels[spec.Name] = spec
	return !found, nil
}

func (n *tunnelNet) DeleteTunnel(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.tunnels, name)
	return nil
}

func (n *tunnelNet) HasTunnel(ctx context.Context, name string) (bool, error) {
	_, ok := n.tunnel(name)
	return ok, nil
}

var _ Tunnels = (*tunnelNet)(nil)

func (n *tunnelNet) tunnel(name string) (TunnelSpec, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.tunnels[name]
	return s, ok
}

func (n *tunnelNet) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.tunnels)
}

// fakeCluster is a cluster of hosts for the engine.
type fakeCluster struct {
	list  []topology.Host
	hosts map[string]Host
}

func (c *fakeCluster) List() []topology.Host { return c.list }
func (c *fakeCluster) Host(name string) (Host, error) {
	if h, ok := c.hosts[name]; ok {
		return h, nil
	}
	return nil, fmt.Errorf("host %s is not in the cluster", name)
}

const spanTopo = `machines:
  - name: a
    network: [{switch: wide, ip: 10.0.0.1}]
  - name: b
    network: [{switch: wide, ip: 10.0.0.2}]
  - name: c
    host: h1
    network: [{switch: narrow, ip: 10.0.1.3}]
network:
  switches:
    wide: {subnet: 10.0.0.0/24}
    narrow: {subnet: 10.0.1.0/24}
`

type twoHosts struct {
	e      *Engine
	d      api.Deployment
	h1, h2 *tunnelNet
	hosts  *fakeCluster
	recs   Records
}

// newTwoHosts makes a cluster of h1 and h2 whose networks make tunnels and
// generates spanTopo over it: a and b on switch wide, on h1 and h2; c alone
// on narrow, on h1.
func newTwoHosts(t *testing.T, recs Records) *twoHosts {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(spanTopo), 0o644); err != nil {
		t.Fatal(err)
	}
	th := &twoHosts{
		d:  api.Deployment{Name: "lab", ProjectLocation: dir},
		h1: &tunnelNet{world: newWorld(), tunnels: map[string]TunnelSpec{}},
		h2: &tunnelNet{world: newWorld(), tunnels: map[string]TunnelSpec{}},
	}
	th.hosts = &fakeCluster{
		list: []topology.Host{{Name: "h1", Main: true, IP: "192.0.2.1"}, {Name: "h2", IP: "192.0.2.2"}},
		hosts: map[string]Host{
			"h1": &LocalHost{HostName: "h1", Net: th.h1, Drivers: guest.NewRegistry(th.h1.world)},
			"h2": &LocalHost{HostName: "h2", Net: th.h2, Drivers: guest.NewRegistry(th.h2.world)},
		},
	}
	if recs == nil {
		recs = &MemoryRecords{}
	}
	th.recs = recs
	th.e = New(Options{Hosts: th.hosts, Records: recs, Concurrency: 2})
	if err := th.e.GenerateArtefacts(context.Background(), th.d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	return th
}

func (th *twoHosts) empty(t *testing.T) {
	t.Helper()
	th.h1.world.empty(t)
	th.h2.world.empty(t)
	if n1, n2 := th.h1.count(), th.h2.count(); n1+n2 > 0 {
		t.Fatalf("tunnels left: %d on h1, %d on h2", n1, n2)
	}
	rec, err := th.e.Deployed(context.Background(), th.d.Name)
	if err != nil || !rec.empty() {
		data, _ := json.Marshal(rec.Hosts)
		t.Fatalf("record left: %s, %v", data, err)
	}
}

func TestSpanningSwitchGetsTunnelsOnBothHosts(t *testing.T) {
	th := newTwoHosts(t, nil)
	ctx := context.Background()
	log := &guesttest.Log{}
	if err := th.e.Up(ctx, th.d, api.UpOptions{}, log); err != nil {
		t.Fatalf("up: %v\n%s", err, log.Text())
	}
	name := topology.TunnelName("lab", "wide")
	bridge := topology.BridgeName("lab", "wide")
	vni := topology.VNI("lab", "wide")
	for _, c := range []struct {
		net         *tunnelNet
		local, peer string
	}{{th.h1, "192.0.2.1", "192.0.2.2"}, {th.h2, "192.0.2.2", "192.0.2.1"}} {
		spec, ok := c.net.tunnel(name)
		want := TunnelSpec{Name: name, VNI: vni, Local: c.local, Peers: []string{c.peer}, Bridge: bridge, MTU: topology.TunnelMTU}
		if !ok || !reflect.DeepEqual(spec, want) {
			t.Errorf("tunnel on %s = %+v (%v), want %+v", c.local, spec, ok, want)
		}
		if c.net.count() != 1 {
			t.Errorf("host %s has %d tunnels; the switch on one host needs none", c.local, c.net.count())
		}
	}
	rec, err := th.e.Deployed(ctx, th.d.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"h1", "h2"} {
		tr, ok := rec.Hosts[h].Tunnels[name]
		if !ok || tr.VNI != vni || !tr.Made || tr.Switch != "wide" || tr.Bridge != bridge {
			t.Errorf("record of %s: tunnel %+v (%v)", h, tr, ok)
		}
	}
	for _, stage := range []string{"[3/7] network", "[4/7] tunnels: 1 switch over 2 tunnels", "[5/7] guests", "[7/7] end"} {
		if !strings.Contains(log.Text(), stage) {
			t.Errorf("log lacks %q:\n%s", stage, log.Text())
		}
	}

	// A second up keeps the VNI and the tunnels, which stay owned.
	if err := th.e.Up(ctx, th.d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	rec2, _ := th.e.Deployed(ctx, th.d.Name)
	if tr := rec2.Hosts["h2"].Tunnels[name]; tr.VNI != vni || !tr.Made {
		t.Errorf("after a second up: %+v", tr)
	}

	dlog := &guesttest.Log{}
	if err := th.e.Down(ctx, th.d, dlog); err != nil {
		t.Fatal(err)
	}
	th.empty(t)
	if !strings.Contains(dlog.Text(), "[2/4] tunnels") {
		t.Errorf("down log lacks its tunnels stage:\n%s", dlog.Text())
	}
}

func TestVNIUniqueAcrossDeployments(t *testing.T) {
	ctx := context.Background()
	recs := &MemoryRecords{}
	want := topology.VNI("lab", "wide")
	// Another deployment already holds the VNI lab's switch hashes to.
	other := Record{Version: recordVersion, Deployment: "other", Hosts: map[string]*HostRecord{
		"h1": {Tunnels: map[string]TunnelRecord{"tbzzzzzx": {Switch: "s", VNI: want, Made: true}}},
	}}
	data, _ := json.Marshal(other)
	recs.PutDeployed(ctx, "other", data)
	recs.PutDeployed(ctx, "broken", []byte("{"))

	th := newTwoHosts(t, recs)
	if err := th.e.Up(ctx, th.d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	name := topology.TunnelName("lab", "wide")
	s1, _ := th.h1.tunnel(name)
	s2, _ := th.h2.tunnel(name)
	if s1.VNI == want || s1.VNI < 1 || s1.VNI > topology.MaxVNI || s1.VNI != s2.VNI {
		t.Fatalf("VNIs %d and %d; want one, not %d (taken by deployment other)", s1.VNI, s2.VNI, want)
	}
	// The record keeps it, even once the other deployment is gone.
	recs.DeleteDeployed(ctx, "other")
	if err := th.e.Up(ctx, th.d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if again, _ := th.h1.tunnel(name); again.VNI != s1.VNI {
		t.Errorf("VNI changed from %d to %d between ups", s1.VNI, again.VNI)
	}
}

func TestFailedUpRevertsTunnels(t *testing.T) {
	for _, c := range []struct {
		name string
		fail func(th *twoHosts)
		want string
	}{
		{"guest fails after tunnels", func(th *twoHosts) { th.h2.failOn = "b" }, "guest b"},
		{"tunnel fails on one host", func(th *twoHosts) { th.h2.fail = true }, "no vxlan here"},
		{"first tunnel fails, the second never starts", func(th *twoHosts) {
			th.h1.fail = true
			th.e = New(Options{Hosts: th.hosts, Records: th.recs, Concurrency: 1})
		}, "no vxlan here"},
	} {
		t.Run(c.name, func(t *testing.T) {
			th := newTwoHosts(t, nil)
			c.fail(th)
			log := &guesttest.Log{}
			err := th.e.Up(context.Background(), th.d, api.UpOptions{}, log)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("up = %v, want an error about %s", err, c.want)
			}
			th.empty(t)
			if !strings.Contains(log.Text(), "reverted: nothing this up made is left") {
				t.Errorf("log:\n%s", log.Text())
			}
		})
	}
}

// TestDownFromRecordAfterRestart: a new engine over the same records (the
// daemon restarted) removes the tunnels on every host.
func TestDownFromRecordAfterRestart(t *testing.T) {
	th := newTwoHosts(t, nil)
	ctx := context.Background()
	if err := th.e.Up(ctx, th.d, api.UpOptions{}, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	// The project folder is gone too: down works from the record alone.
	if err := os.RemoveAll(th.d.ProjectLocation); err != nil {
		t.Fatal(err)
	}
	th.e = New(Options{Hosts: th.hosts, Records: th.recs})
	if err := th.e.Down(ctx, th.d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	th.empty(t)
}

func TestSpanningNeedsTunnelsAndIPs(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(th *twoHosts)
		want string
	}{
		{"network without tunnels", func(th *twoHosts) {
			th.hosts.hosts["h2"] = &LocalHost{HostName: "h2", Net: th.h2.world, Drivers: guest.NewRegistry(th.h2.world)}
		}, ErrNoTunnels.Error()},
		{"host without ip", func(th *twoHosts) {
			th.hosts.list[1].IP = ""
			if err := th.e.GenerateArtefacts(context.Background(), th.d, &guesttest.Log{}); err != nil {
				t.Fatal(err)
			}
		}, "host h2 has no ip"},
	} {
		t.Run(c.name, func(t *testing.T) {
			th := newTwoHosts(t, nil)
			c.edit(th)
			err := th.e.Up(context.Background(), th.d, api.UpOptions{}, &guesttest.Log{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("up = %v, want an error saying %q", err, c.want)
			}
			th.empty(t)
		})
	}
}

// TestOneHostHasNoTunnelStage: a deployment on one host keeps its six
// stages and makes no tunnel.
func TestOneHostHasNoTunnelStage(t *testing.T) {
	e, w, d := setup(t)
	log := &guesttest.Log{}
	if err := e.Up(context.Background(), d, api.UpOptions{}, log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.Text(), "tunnels") || !strings.Contains(log.Text(), "[6/6] end") {
		t.Errorf("log:\n%s", log.Text())
	}
	if err := e.Down(context.Background(), d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	w.empty(t)
}
