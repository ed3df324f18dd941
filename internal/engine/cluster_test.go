package engine_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/net/vxlan"
	"github.com/testbedos/testbedos/internal/topology"
)

// nsHost is a host of the cluster played by a network namespace of this
// machine: its network calls and the real netns driver's calls run on a
// thread inside that namespace (nettest.InNamespace), so its bridges,
// tunnels and host-side veths live there. Only the guests' own namespaces
// are shared with the machine (under /run/netns), as on real hosts they
// would not be: their names differ per guest.
type nsHost struct {
	name, ns string
	drv      guest.Driver
}

func (h *nsHost) Name() string            { return h.name }
func (h *nsHost) Network() engine.Network { return nsNetwork{ns: h.ns} }
func (h *nsHost) Driver(kind string) (guest.Driver, error) {
	if kind != topology.KindNetns {
		return nil, fmt.Errorf("host %s has only netns guests", h.name)
	}
	return nsDriver{ns: h.ns, drv: h.drv}, nil
}
func (h *nsHost) Files(project string) guest.Files { return guest.ProjectFiles{Project: project} }

// nsNetwork is hostnet run inside a host's namespace. The firewall calls
// do nothing: a namespace's own filter tables are empty and accept.
type nsNetwork struct{ ns string }

func (n nsNetwork) in(fn func() error) error { return nettest.InNamespace(n.ns, fn) }

func (n nsNetwork) HasBridge(ctx context.Context, name string) (ok bool, err error) {
	err = n.in(func() error { ok, err = bridge.Exists(name); return err })
	return ok, err
}
func (n nsNetwork) EnsureBridge(ctx context.Context, name string) (created bool, err error) {
	err = n.in(func() error { created, err = hostnet.NewHost(nil).EnsureBridge(ctx, name); return err })
	return created, err
}
func (n nsNetwork) DeleteBridge(ctx context.Context, name string) error {
	return n.in(func() error { return bridge.Delete(ctx, name) })
}
func (n nsNetwork) AllowBridge(ctx context.Context, name string) error  { return nil }
func (n nsNetwork) RemoveBridge(ctx context.Context, name string) error { return nil }
func (n nsNetwork) EnsureTunnel(ctx context.Context, spec engine.TunnelSpec) (created bool, err error) {
	err = n.in(func() error { created, err = vxlan.Ensure(ctx, spec); return err })
	return created, err
}
func (n nsNetwork) DeleteTunnel(ctx context.Context, name string) error {
	return n.in(func() error { return vxlan.Delete(ctx, name) })
}

func (n nsNetwork) HasTunnel(ctx context.Context, name string) (ok bool, err error) {
	err = n.in(func() error { ok, err = links.Exists(name); return err })
	return ok, err
}

var _ engine.Tunnels = nsNetwork{}

// nsDriver runs a driver's calls inside a host's namespace.
type nsDriver struct {
	ns  string
	drv guest.Driver
}

func (d nsDriver) Kind() string                     { return d.drv.Kind() }
func (d nsDriver) Capabilities() guest.Capabilities { return d.drv.Capabilities() }
func (d nsDriver) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (ok bool, err error) {
	err = nettest.InNamespace(d.ns, func() error { ok, err = d.drv.Exists(ctx, dep, g); return err })
	return ok, err
}
func (d nsDriver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (created bool, err error) {
	err = nettest.InNamespace(d.ns, func() error { created, err = d.drv.Create(ctx, dep, g, log); return err })
	return created, err
}
func (d nsDriver) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, script string, log actlog.Log) error {
	return nettest.InNamespace(d.ns, func() error { return d.drv.RunScript(ctx, dep, g, script, log) })
}
func (d nsDriver) Destroy(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	return nettest.InNamespace(d.ns, func() error { return d.drv.Destroy(ctx, dep, g, log) })
}

// newNSCluster makes n hosts h1…hn, each a namespace with the real netns
// driver, on one underlay switch with addresses 10.252.0.1…n.
func newNSCluster(t testing.TB, prefix string, n int) nsCluster {
	t.Helper()
	var c nsCluster
	var namespaces, cidrs []string
	for i := 1; i <= n; i++ {
		h := &nsHost{name: fmt.Sprintf("h%d", i), ns: fmt.Sprintf("%sh%d", prefix, i), drv: netns.New(netns.Options{})}
		nettest.AddNamespace(t, h.ns)
		c = append(c, h)
		namespaces = append(namespaces, h.ns)
		cidrs = append(cidrs, fmt.Sprintf("10.252.0.%d/24", i))
	}
	if n > 1 {
		nettest.UnderlaySwitch(t, prefix+"ux", namespaces, cidrs)
	}
	return c
}

// nsCluster is the hosts of the test.
type nsCluster []*nsHost

func (c nsCluster) List() []topology.Host {
	var out []topology.Host
	for i, h := range c {
		out = append(out, topology.Host{Name: h.name, Main: i == 0, IP: fmt.Sprintf("10.252.0.%d", i+1)})
	}
	return out
}
func (c nsCluster) Host(name string) (engine.Host, error) {
	for _, h := range c {
		if h.name == name {
			return h, nil
		}
	}
	return nil, fmt.Errorf("host %s is not in the cluster", name)
}

// TestGuestsOnTwoHostsReachEachOther brings up, with the real kernel, four
// netns guests on one switch spread over two hosts (namespaces joined by a
// veth underlay): every guest pings every other, across the VXLAN tunnel
// or on its own host's bridge; down leaves nothing on either host.
func TestGuestsOnTwoHostsReachEachOther(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	hosts := newNSCluster(t, prefix, 2)

	var y strings.Builder
	y.WriteString("machines:\n")
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&y, "  - name: g%d\n    network: [{switch: wide, ip: 10.253.0.%d}]\n", i, i)
	}
	y.WriteString("network:\n  switches:\n    wide: {subnet: 10.253.0.0/24}\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := api.Deployment{Name: "it-" + prefix, ProjectLocation: dir}
	t.Cleanup(func() { nettest.RemoveAll("tbos." + d.Name + ".") })
	e := engine.New(engine.Options{Hosts: hosts, Records: &engine.MemoryRecords{}})
	ctx := context.Background()
	log := &guesttest.Log{}
	if err := e.GenerateArtefacts(ctx, d, log); err != nil {
		t.Fatal(err)
	}
	st, err := topology.ReadState(topology.StatePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Down(context.Background(), d, &guesttest.Log{}) })
	start := time.Now()
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatalf("up: %v\n%s", err, log.Text())
	}
	t.Logf("up of 4 guests over 2 hosts: %s", time.Since(start))

	for _, g := range st.Guests {
		if g.Interfaces[0].MTU != topology.TunnelMTU {
			t.Errorf("guest %s: MTU %d in the state", g.Name, g.Interfaces[0].MTU)
		}
		err := nettest.InNamespace(g.Netns.Namespace, func() error {
			link, err := netlink.LinkByName("eth0")
			if err == nil && link.Attrs().MTU != topology.TunnelMTU {
				err = fmt.Errorf("eth0 has MTU %d", link.Attrs().MTU)
			}
			return err
		})
		if err != nil {
			t.Errorf("guest %s: %v", g.Name, err)
		}
	}
	// The hosts' objects are in the hosts, none in the machine's own
	// namespace.
	if root, err := links.WithPrefix(st.Prefix); err != nil || len(root) > 0 {
		t.Errorf("links of the deployment outside its hosts: %v, %v", root, err)
	}
	tunnel := topology.TunnelName(d.Name, "wide")
	for i, h := range hosts {
		var peers []string
		err := nettest.InNamespace(h.ns, func() (err error) { peers, err = vxlan.Peers(tunnel); return err })
		want := []string{fmt.Sprintf("10.252.0.%d", 2-i)}
		if err != nil || !slices.Equal(peers, want) {
			t.Errorf("host %s: tunnel %s peers %v, %v; want %v", h.name, tunnel, peers, err, want)
		}
	}
	for _, from := range st.Guests {
		for _, to := range st.Guests {
			if from.Name == to.Name {
				continue
			}
			dst, _, _ := net.ParseCIDR(to.Interfaces[0].Address)
			if err := nettest.Ping(from.Netns.Namespace, dst, 5*time.Second); err != nil {
				t.Errorf("%s (%s) → %s (%s): %v", from.Name, from.Host, to.Name, to.Host, err)
			}
		}
	}

	if err := e.Down(ctx, d, log); err != nil {
		t.Fatalf("down: %v\n%s", err, log.Text())
	}
	for _, h := range hosts {
		var left []string
		err := nettest.InNamespace(h.ns, func() (err error) { left, err = links.WithPrefix(st.Prefix); return err })
		if err != nil || len(left) > 0 {
			t.Errorf("host %s: left behind %v, %v", h.name, left, err)
		}
	}
	if _, namespaces, _ := nettest.Leftovers("tbos." + d.Name + "."); len(namespaces) > 0 {
		t.Errorf("guest namespaces left: %v", namespaces)
	}
	if t.Failed() {
		t.Logf("log:\n%s", log.Text())
	}
}

// BenchmarkUpDownOverHosts brings 300 netns guests on one switch up and
// down over 4 hosts (namespaces on one underlay, so the switch spans them
// with VXLAN) next to the same 300 on 1 host, through the whole engine and
// the real netns driver. Every host's stages run concurrently; the machine
// is the same, so this measures the engine's multi-host overhead, not the
// gain of more machines.
func BenchmarkUpDownOverHosts(b *testing.B) {
	nettest.RequireRoot(b)
	const n = 300
	for _, nhosts := range []int{1, 4} {
		b.Run(fmt.Sprintf("guests=%d/hosts=%d", n, nhosts), func(b *testing.B) {
			prefix := nettest.Prefix(b)
			hosts := newNSCluster(b, prefix, nhosts)
			var y strings.Builder
			y.WriteString("machines:\n")
			for i := range n {
				fmt.Fprintf(&y, "  - name: g%d\n    network: [{switch: sw0, ip: 10.124.%d.%d}]\n", i, (i+1)>>8, (i+1)&0xff)
			}
			y.WriteString("network:\n  switches:\n    sw0: {subnet: 10.124.0.0/16}\n")
			dir := b.TempDir()
			must(b, os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(y.String()), 0o644))
			d := api.Deployment{Name: "bh-" + prefix, ProjectLocation: dir}
			e := engine.New(engine.Options{Hosts: hosts, Records: &engine.MemoryRecords{}})
			ctx := context.Background()
			must(b, e.GenerateArtefacts(ctx, d, discard{}))
			b.Cleanup(func() {
				_ = e.Down(context.Background(), d, discard{})
				nettest.RemoveAll("tbos." + d.Name + ".")
			})
			var up, down time.Duration
			for b.Loop() {
				start := time.Now()
				must(b, e.Up(ctx, d, api.UpOptions{}, discard{}))
				mid := time.Now()
				must(b, e.Down(ctx, d, discard{}))
				up += mid.Sub(start)
				down += time.Since(mid)
			}
			b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "up-ms")
			b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "down-ms")
		})
	}
}
