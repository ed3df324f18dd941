package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// upBridge creates the plan's bridge with the firewall exception and
// removes both at cleanup.
func upBridge(t testing.TB, p benchbase.Plan) {
	t.Helper()
	if len(p.Bridges) > 0 {
		for _, br := range p.Bridges {
			upBridge(t, benchbase.Plan{Prefix: p.Prefix, Bridge: br, N: p.N})
		}
		return
	}
	ctx := context.Background()
	if _, err := bridge.Ensure(ctx, p.Bridge); err != nil {
		t.Fatal(err)
	}
	fw := bridge.NewFirewall(nil)
	t.Cleanup(func() {
		if err := fw.RemoveBridge(p.Bridge); err != nil {
			t.Error(err)
		}
		if err := bridge.Delete(ctx, p.Bridge); err != nil {
			t.Error(err)
		}
	})
	// Makes the test pass on hosts where Docker drops forwarded traffic.
	if err := fw.AllowBridge(p.Bridge); err != nil {
		t.Fatal(err)
	}
}

func upGuests(t *testing.T, d *Driver, st *topology.State, log *guesttest.Log) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		if err := benchbase.ForEach(ctx, 8, len(st.Guests), func(ctx context.Context, i int) error {
			return d.Destroy(ctx, guest.LocalDeployment(st), &st.Guests[i], log)
		}); err != nil {
			t.Error(err)
		}
	})
	err := benchbase.ForEach(ctx, 8, len(st.Guests), func(ctx context.Context, i int) error {
		return created(d.Create(ctx, guest.LocalDeployment(st), &st.Guests[i], log))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func assertNoLeftovers(t *testing.T, prefix string) {
	t.Helper()
	links, namespaces, err := nettest.Leftovers(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(links)+len(namespaces) > 0 {
		t.Errorf("left behind: links %v, namespaces %v", links, namespaces)
	}
}

func TestGuestsReachEachOther(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 3}
	st := stateFor(p)
	st.Guests[0].Interfaces[0].Gateway = "10.123.0.254"
	ctx := context.Background()
	d := New(Options{})
	log := &guesttest.Log{}

	t.Run("lifecycle", func(t *testing.T) {
		upBridge(t, p)
		for i := range st.Guests {
			if ok, err := d.Exists(ctx, guest.Deployment{}, &st.Guests[i]); err != nil || ok {
				t.Fatalf("Exists before Create = %v, %v; want false", ok, err)
			}
		}
		upGuests(t, d, st, log)

		for i := range st.Guests {
			g := &st.Guests[i]
			if ok, err := d.Exists(ctx, guest.Deployment{}, g); err != nil || !ok {
				t.Fatalf("Exists(%s) after Create = %v, %v; want true", g.Name, ok, err)
			}
			checkGuestInterface(t, g)
		}
		if _, err := d.Create(ctx, guest.LocalDeployment(st), &st.Guests[0], log); !errors.Is(err, fs.ErrExist) {
			t.Errorf("second Create = %v, want fs.ErrExist", err)
		}

		for i := range st.Guests {
			for j := range st.Guests {
				if i == j {
					continue
				}
				dst, _, _ := net.ParseCIDR(st.Guests[j].Interfaces[0].Address)
				if err := nettest.Ping(p.Namespace(i), dst, 3*time.Second); err != nil {
					t.Errorf("%s → %s: %v", st.Guests[i].Name, st.Guests[j].Name, err)
				}
			}
		}
		if ipPath, err := exec.LookPath("ip"); err == nil {
			// Users inspect guests with iproute2; it must see them.
			out, err := exec.Command(ipPath, "netns", "exec", p.Namespace(1), ipPath, "-brief", "addr", "show", "eth0").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "10.123.0.2/16") {
				t.Errorf("ip netns exec: %v: %s", err, out)
			}
		}

		testScripts(t, d, st, log)
	})
	assertNoLeftovers(t, prefix)
	t.Logf("log:\n%s", log.Text())
}

func checkGuestInterface(t *testing.T, g *topology.Guest) {
	t.Helper()
	ifc := g.Interfaces[0]
	err := nettest.InNamespace(g.Netns.Namespace, func() error {
		link, err := netlink.LinkByName(ifc.Name)
		if err != nil {
			return err
		}
		if got := link.Attrs().HardwareAddr.String(); got != ifc.MAC {
			return fmt.Errorf("MAC %s, want %s", got, ifc.MAC)
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("%s is down", ifc.Name)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != ifc.Address {
			return fmt.Errorf("addresses %v, want %s", addrs, ifc.Address)
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo not up (%v)", err)
		}
		if ifc.Gateway != "" {
			routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, r := range routes {
				isDefault := r.Dst == nil || r.Dst.String() == "0.0.0.0/0"
				if isDefault && r.Gw.String() == ifc.Gateway {
					return nil
				}
			}
			return fmt.Errorf("no default route via %s in %v", ifc.Gateway, routes)
		}
		return nil
	})
	if err != nil {
		t.Errorf("guest %s: %v", g.Name, err)
	}
	host, err := netlink.LinkByName(ifc.HostName)
	if err != nil {
		t.Fatalf("host end %s: %v", ifc.HostName, err)
	}
	br, err := netlink.LinkByName(ifc.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("host end %s: master %d (bridge is %d), flags %v", ifc.HostName, host.Attrs().MasterIndex, br.Attrs().Index, host.Attrs().Flags)
	}
}

func testScripts(t *testing.T, d *Driver, st *topology.State, log *guesttest.Log) {
	ctx := context.Background()
	dir := t.TempDir()
	st.Project = dir // scripts are files of the project
	write := func(name, body string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Written before anything runs, so no concurrent fork holds them open.
	setup := write("setup.sh", "#!/bin/sh\necho \"hello from $TESTBEDOS_GUEST of $TESTBEDOS_DEPLOYMENT\"\necho \"cwd $(pwd)\"\necho \"ns $(readlink /proc/self/ns/net)\"\necho oops >&2\nprintf 'no newline'\n", 0o755)
	plain := write("plain.sh", "echo run by sh\n", 0o644)
	failing := write("fail.sh", "#!/bin/sh\necho about to fail\nexit 3\n", 0o755)
	daemon := write("daemon.sh", "#!/bin/sh\nsleep 600 >/dev/null 2>&1 &\necho started\n", 0o755)

	g1 := &st.Guests[1]
	if err := d.RunScript(ctx, guest.LocalDeployment(st), g1, setup, log); err != nil {
		t.Fatal(err)
	}
	var ns unix.Stat_t
	if err := unix.Stat(netnsPath(g1.Netns.Namespace), &ns); err != nil {
		t.Fatal(err)
	}
	text := log.Text()
	for _, want := range []string{
		"[g1] hello from g1 of " + st.Deployment,
		"[g1] cwd " + dir,
		fmt.Sprintf("[g1] ns net:[%d]", ns.Ino),
		"[g1] oops",
		"[g1] no newline",
	} {
		if !strings.Contains(text, want+"\n") && !strings.HasSuffix(text, want) {
			t.Errorf("log lacks line %q:\n%s", want, text)
		}
	}

	if err := d.RunScript(ctx, guest.LocalDeployment(st), g1, plain, log); err != nil {
		t.Errorf("non-executable script: %v", err)
	} else if !strings.Contains(log.Text(), "[g1] run by sh") {
		t.Errorf("non-executable script output missing:\n%s", log.Text())
	}

	err := d.RunScript(ctx, guest.LocalDeployment(st), g1, failing, log)
	if err == nil || !strings.Contains(err.Error(), "exited with code 3") {
		t.Errorf("failing script: error %v, want one naming exit code 3", err)
	}
	if !strings.Contains(log.Text(), "[g1] about to fail") {
		t.Errorf("failing script output missing")
	}

	// Cancelling kills the whole process group, background children too.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	slow := write("slow.sh", "#!/bin/sh\nsleep 60 &\necho $! > "+filepath.Join(dir, "sleeper.pid")+"\nwait\n", 0o755)
	start := time.Now()
	err = d.RunScript(cctx, guest.LocalDeployment(st), g1, slow, log)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled script: error %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled script returned after %s", took)
	}
	if pid := readPID(t, filepath.Join(dir, "sleeper.pid")); pid > 0 {
		waitProcessGone(t, pid)
	}

	// A daemon left running is killed by Destroy.
	g2 := &st.Guests[2]
	if err := d.RunScript(ctx, guest.LocalDeployment(st), g2, daemon, log); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, guest.LocalDeployment(st), g2, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.Text(), "killed 1 processes") {
		t.Errorf("Destroy did not report killing the daemon:\n%s", log.Text())
	}
	if ok, err := d.Exists(ctx, guest.Deployment{}, g2); err != nil || ok {
		t.Errorf("Exists after Destroy = %v, %v", ok, err)
	}
	if err := d.Destroy(ctx, guest.LocalDeployment(st), g2, log); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if err := d.RunScript(ctx, guest.LocalDeployment(st), g2, plain, log); err == nil {
		t.Errorf("RunScript in a destroyed guest succeeded")
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("background child did not record its pid: %v", err)
		return 0
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

func waitProcessGone(t *testing.T, pid int) {
	t.Helper()
	for range 100 {
		if unix.Kill(pid, 0) != nil {
			return
		}
		// It may be a zombie of ours' child's: check its state.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("process %d of the cancelled script still runs", pid)
}

// A Create that fails half-way leaves nothing behind.
func TestCreateFailureLeavesNothing(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 1}
	upBridge(t, p)
	st := stateFor(p)
	g := &st.Guests[0]
	// The second interface's host name is taken, so its veth fails after
	// the namespace and the first veth exist.
	taken := prefix + "taken"
	other := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: taken}}
	if err := netlink.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(other) })
	second := g.Interfaces[0]
	second.Name, second.HostName, second.MAC, second.Address = "eth1", taken, "", "10.124.0.1/24"
	g.Interfaces = append(g.Interfaces, second)

	d := New(Options{})
	_, err := d.Create(context.Background(), guest.LocalDeployment(st), g, &guesttest.Log{})
	if err == nil {
		t.Fatal("Create succeeded with a taken host name")
	}
	t.Logf("Create: %v", err)
	if mounted, _ := namespace.Mounted(netnsPath(g.Netns.Namespace)); mounted {
		t.Errorf("namespace still mounted")
	}
	if ok, _ := links.Exists(p.HostVeth(0)); ok {
		t.Errorf("first veth %s still there", p.HostVeth(0))
	}
	if ok, _ := links.Exists(taken); !ok {
		t.Errorf("the link that was there before (%s) was removed", taken)
	}
}

// Create removes remnants of an interrupted run before making the guest.
func TestCreateClearsRemnants(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 1}
	upBridge(t, p)
	st := stateFor(p)
	g := &st.Guests[0]
	// A mounted namespace without its veth, as a crash after the mount
	// would leave.
	nsfd, h, err := namespace.Create(netnsPath(g.Netns.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	unix.Close(nsfd)

	d := New(Options{})
	log := &guesttest.Log{}
	if ok, err := d.Exists(context.Background(), guest.Deployment{}, g); err != nil || ok {
		t.Fatalf("Exists on remnants = %v, %v; want false", ok, err)
	}
	if _, err := d.Create(context.Background(), guest.LocalDeployment(st), g, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), guest.LocalDeployment(st), g, log) })
	if !strings.Contains(log.Text(), "remnants") {
		t.Errorf("log does not mention remnants:\n%s", log.Text())
	}
	checkGuestInterface(t, g)
}

// Destroy cleans up whatever part of a guest exists, and nothing at all is
// fine too.
func TestDestroyPartialGuest(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 2}
	upBridge(t, p)
	st := stateFor(p)
	d := New(Options{})
	ctx := context.Background()
	log := &guesttest.Log{}

	// Guest 0 never existed.
	start := time.Now()
	if err := d.Destroy(ctx, guest.LocalDeployment(st), &st.Guests[0], log); err != nil {
		t.Fatal(err)
	}
	// No wait for what is not there (the waits of a destroy are seconds).
	if took := time.Since(start); took > time.Second {
		t.Errorf("Destroy of nothing took %s", took)
	}

	// Guest 1 has only a host veth left, its namespace gone.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.HostVeth(1)}, PeerName: prefix + "peer"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, guest.LocalDeployment(st), &st.Guests[1], log); err != nil {
		t.Fatal(err)
	}
	left, _, _ := nettest.Leftovers(prefix + "h")
	if peer, _ := links.Exists(prefix + "peer"); len(left) > 0 || peer {
		t.Errorf("left behind: %v (peer there: %v)", left, peer)
	}
}

// Many guests at once, as the engine's worker pool drives them: every
// guest gets its own interface and its script runs in its own namespace.
func TestManyGuestsConcurrently(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 40}
	upBridge(t, p)
	st := stateFor(p)
	d := New(Options{})
	log := &guesttest.Log{}
	ctx := context.Background()
	st.Project = t.TempDir()
	script := filepath.Join(st.Project, "who.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$TESTBEDOS_GUEST $(readlink /proc/self/ns/net)\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // twice: names are reused right after Destroy
		upGuests(t, d, st, log)
		err := benchbase.ForEach(ctx, 8, p.N, func(ctx context.Context, i int) error {
			return d.RunScript(ctx, guest.LocalDeployment(st), &st.Guests[i], script, log)
		})
		if err != nil {
			t.Fatal(err)
		}
		text := log.Text()
		for i := range p.N {
			var ns unix.Stat_t
			if err := unix.Stat(netnsPath(p.Namespace(i)), &ns); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("[g%d] g%d net:[%d]", i, i, ns.Ino)
			if !strings.Contains(text, want) {
				t.Errorf("round %d: log lacks %q", round, want)
			}
		}
		err = benchbase.ForEach(ctx, 8, p.N, func(ctx context.Context, i int) error {
			return d.Destroy(ctx, guest.LocalDeployment(st), &st.Guests[i], log)
		})
		if err != nil {
			t.Fatal(err)
		}
		// Destroy returns only when the host ends are gone.
		if links, _ := links.WithPrefix(prefix + "h"); len(links) > 0 {
			t.Fatalf("round %d: host ends left after Destroy: %v", round, links)
		}
	}
	assertNoLeftovers(t, prefix+"n")
}

// TestInterfaceMTU: an interface on a switch spanning hosts carries the
// MTU of the state on both veth ends.
func TestInterfaceMTU(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 1}
	st := stateFor(p)
	st.Guests[0].Interfaces[0].MTU = topology.TunnelMTU
	d := New(Options{})
	log := &guesttest.Log{}
	t.Run("up", func(t *testing.T) {
		upBridge(t, p)
		upGuests(t, d, st, log)
		ifc := st.Guests[0].Interfaces[0]
		host, err := netlink.LinkByName(ifc.HostName)
		if err != nil {
			t.Fatal(err)
		}
		if got := host.Attrs().MTU; got != topology.TunnelMTU {
			t.Errorf("host end %s: MTU %d, want %d", ifc.HostName, got, topology.TunnelMTU)
		}
		err = nettest.InNamespace(st.Guests[0].Netns.Namespace, func() error {
			link, err := netlink.LinkByName(ifc.Name)
			if err != nil {
				return err
			}
			if got := link.Attrs().MTU; got != topology.TunnelMTU {
				return fmt.Errorf("guest end %s: MTU %d, want %d", ifc.Name, got, topology.TunnelMTU)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	assertNoLeftovers(t, prefix)
}
