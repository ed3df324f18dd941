package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/docker"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// robustExtra adds an external switch with a namespace guest to the lab.
const robustExtraMachine = `  - name: ext
    network: [{switch: sw3, ip: 10.0.3.10, gateway: 10.0.3.1}]
`

// goroutines reads go_goroutines from the server's /metrics over its
// unix socket: the lowest of a few reads, so a request in flight does not
// count.
func goroutines(t *testing.T, s *server) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", s.socket)
	}, DisableKeepAlives: true}}
	low := -1
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		resp, err := hc.Get("http://unix/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				if low < 0 || int(n) < low {
					low = int(n)
				}
			}
		}
		resp.Body.Close()
	}
	if low < 0 {
		t.Fatal("no go_goroutines in /metrics")
	}
	return low
}

// goroutinesAtMost polls the server's goroutines until there are at most
// limit, for ten seconds past docker.IdleTimeout, and returns the last count and whether it
// got there. Goroutines that end on their own soon (those serving an idle
// connection to dockerd, closed after docker.IdleTimeout) are no leak; one
// still there after the wait is.
func goroutinesAtMost(t *testing.T, s *server, limit int) (int, bool) {
	t.Helper()
	for deadline := time.Now().Add(docker.IdleTimeout + 10*time.Second); ; {
		n := goroutines(t, s)
		if n <= limit || time.Now().After(deadline) {
			return n, n <= limit
		}
	}
}

// baseGoroutines is the server's goroutines at rest: once its idle
// connections to dockerd have closed.
func baseGoroutines(t *testing.T, s *server) int {
	t.Helper()
	time.Sleep(docker.IdleTimeout)
	return goroutines(t, s)
}

// assertLabGone checks every kind of object the lab makes: namespaces,
// links, containers, host tables, cgroups.
func assertLabGone(t *testing.T, cli *client.Client, st topology.State) {
	t.Helper()
	assertNothingLeft(t, st)
	for _, g := range st.Guests {
		if g.Docker == nil {
			continue
		}
		if _, err := cli.ContainerInspect(context.Background(), g.Docker.Container, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("container %s left: %v", g.Docker.Container, err)
		}
	}
	if left := hostTables(t, st.Prefix); len(left) > 0 {
		t.Errorf("nft tables left on the host: %v", left)
	}
	if left := hostTables(t, "testbedos-impair-"); len(left) > 0 {
		t.Errorf("impairment tables left on the host: %v", left)
	}
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(root, "testbedos", st.Deployment)); err == nil {
			t.Errorf("cgroup %s/testbedos/%s left", root, st.Deployment)
		}
	}
}

// impairLab sets run-time delays on a namespace guest and a container.
func impairLab(t *testing.T, s *server, name string) {
	t.Helper()
	for _, g := range []string{"a", "dyn", "ext"} {
		if _, err := s.c.SetImpairment(context.Background(), name, g, "eth0", api.Impairment{Up: true, DelayMS: 20}); err != nil {
			t.Fatalf("impair %s: %v", g, err)
		}
	}
}

// TestRobustLab: a lab with containers, a router with DHCP and NAT, an
// external switch, an ACL and run-time impairments goes up and down
// several times without the daemon's goroutines growing; a SIGTERM with
// a console and a capture open is prompt; after a kill -9 and a removed
// router the restart restores it, and down (twice) leaves nothing.
func TestRobustLab(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	yaml := labMachines + robustExtraMachine +
		strings.Replace(labNetwork, "    sw2: {subnet: 10.0.2.0/24}\n", "    sw2: {subnet: 10.0.2.0/24}\n    sw3: {subnet: 10.0.3.0/24, external: true}\n", 1) + indent(labACL, 4)
	lab := containerLab(t, s, "rob", yaml, map[string]string{"box-setup.sh": "#!/bin/sh\necho box\n"}, "box", "dyn")
	name, st, cli, dir := lab.name, lab.st, lab.cli, lab.dir
	ctx := context.Background()

	var base int
	for i := range 3 {
		mustSucceed(t, s, name, cmd(api.CmdUp))
		impairLab(t, s, name)
		mustSucceed(t, s, name, cmd(api.CmdDown))
		assertLabGone(t, cli, st)
		if i == 0 {
			base = baseGoroutines(t, s)
			t.Logf("goroutines after cycle 1: %d", base)
		} else if n, ok := goroutinesAtMost(t, s, base+3); !ok {
			t.Errorf("goroutines grew from %d to %d after %d up/down cycles", base, n, i+1)
		}
	}

	// SIGTERM with DHCP, queues, a console and a capture open.
	mustSucceed(t, s, name, cmd(api.CmdUp))
	impairLab(t, s, name)
	t.Logf("goroutines while up: %d", goroutines(t, s))
	delayed(t, name, "after up")
	capture, err := s.c.Capture(ctx, name, "a", "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer capture.Close()
	console, err := s.c.OpenConsole(ctx, name, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	stopping := time.Now()
	s.stop(t)
	// Closing a console waits half a second at most; the bug this guards
	// against (two racing closes) held it 5 s, a stuck wait 30 s.
	if took := time.Since(stopping); took > 4*time.Second {
		log := s.stderr.String()
		if i := strings.LastIndex(log, "shutting down"); i > 300 {
			log = log[i-300:]
		}
		t.Errorf("SIGTERM took %v with DHCP, queues, a console and a capture open:\n%s", took, log)
	} else {
		t.Logf("SIGTERM took %v", took)
	}
	s.start(t) // the lock was released
	d, err := s.c.Deployment(ctx, name)
	if err != nil || !d.State.Is(api.StateUp) {
		t.Fatalf("after a restart: %+v, %v", d, err)
	}
	upID := *d.LastActionUUID
	delayed(t, name, "after a SIGTERM and a start")

	// kill -9 with nothing missing: no action, the impairments still hold.
	s.kill9(t)
	s.start(t)
	time.Sleep(300 * time.Millisecond)
	if d, _ = s.c.Deployment(ctx, name); *d.LastActionUUID != upID || !d.State.Is(api.StateUp) {
		t.Errorf("a restart after kill -9 with nothing missing: %+v", d)
	}
	delayed(t, name, "after a kill -9 and a start")

	// kill -9, the router's namespace goes (as a reboot would): the
	// restart restores it.
	s.kill9(t)
	router := st.Routers[0].Namespace
	nettest.RemoveAll(router)
	removeContainers(cli, name, "dyn")
	s.start(t)
	_, restored := restoreLog(t, s, name, upID)
	if _, err := os.Stat(nettest.NamespacePath(router)); err != nil {
		t.Errorf("router namespace not restored: %v", err)
	}
	if err := nettest.Ping(netnsPrefix(name)+"a", net.ParseIP("10.0.2.10"), 5*time.Second); err != nil {
		t.Errorf("a → target through the restored router: %v", err)
	}
	delayed(t, name, "after the restore")
	if out, ok := execOK(t, s, name, "dyn", "ip", "-o", "-4", "addr", "show", "dev", "eth0"); !ok || !strings.Contains(out, "10.0.1.") {
		t.Errorf("the removed container dyn is not back with a lease after the restore: %s", out)
	}
	if imp, err := s.c.Impairment(ctx, name, "dyn", "eth0"); err != nil || imp.DelayMS != 20 || imp.Source != "runtime" {
		t.Errorf("dyn's run-time delay after the restore: %+v, %v\n%s", imp, err, restored)
	}
	// down with a capture and consoles open: they end with the guests.
	capture2, err := s.c.Capture(ctx, name, "a", "eth0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer capture2.Close()
	for _, g := range []string{"a", "dyn"} {
		con, err := s.c.OpenConsole(ctx, name, g)
		if err != nil {
			t.Fatalf("console of %s: %v", g, err)
		}
		defer con.Close()
	}
	// down works from the daemon's record, not the project's artefacts.
	if err := os.RemoveAll(filepath.Join(dir, "artefacts")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nettest.RemoveAll(st.Prefix) })
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, capture2); close(ended) }()
	mustSucceed(t, s, name, cmd(api.CmdDown))
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Error("a capture of a guest still streams 10 s after down")
	}
	assertLabGone(t, cli, st)
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertLabGone(t, cli, st)
}

// delayed checks that a's run-time 20 ms delay holds: pings from a to its
// router's port take at least that.
func delayed(t *testing.T, name, when string) {
	t.Helper()
	p, err := nettest.NewPinger(netnsPrefix(name)+"a", net.ParseIP("10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	best := time.Hour
	for range 3 {
		if rtt, err := p.Echo(2 * time.Second); err == nil {
			best = min(best, rtt)
		}
	}
	if best < 20*time.Millisecond || best > time.Second {
		t.Errorf("a → 10.0.0.1 %s: best rtt %v, want ≥ 20ms (the run-time delay)", when, best)
	} else {
		t.Logf("a → 10.0.0.1 %s: %v", when, best)
	}
}

// robustRouters: two routers, DHCP on sw1, NAT on r1, an external
// switch, an ACL; namespace guests only, so up is quick.
const robustRouters = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10, gateway: 10.0.0.1}]
  - name: b
    network: [{switch: sw1, ip: dynamic}]
  - name: c
    network: [{switch: sw2, ip: 10.0.2.10, gateway: 10.0.2.1}]
  - name: ext
    network: [{switch: sw3, ip: 10.0.3.10, gateway: 10.0.3.1}]
GUESTS
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
    sw2: {subnet: 10.0.2.0/24}
    sw3: {subnet: 10.0.3.0/24, external: true}
  routers:
    r1:
      ports:
        - {name: r1-sw0, switch: sw0, gateway_ip: 10.0.0.1/24}
        - {name: r1-sw1, switch: sw1, gateway_ip: 10.0.1.1/24}
      nat: [{nat_type: snat, logical_ip: 10.0.0.0/24, external_ip: 10.0.1.1}]
      dhcp: [{switch: sw1, exclude_ips: {from: 10.0.1.1, to: 10.0.1.19}}]
    r2:
      ports:
        - {name: r2-sw1, switch: sw1, gateway_ip: 10.0.1.2/24}
        - {name: r2-sw2, switch: sw2, gateway_ip: 10.0.2.1/24}
  acl:
    switches:
      sw1:
        - {direction: to-lport, priority: 100, match: 'outport == "b" && tcp.dst == 7005', action: drop}
`

// TestRobustFailedUp: an up that fails in the routers stage (a link in the
// way of r2's port), or in the guests stage after the routers and ACLs (a
// container whose image is not there), or that is cancelled at any point,
// leaves nothing and no goroutine behind; a later up works.
func TestRobustFailedUp(t *testing.T) {
	nettest.RequireRoot(t)
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	s := startServer(t)
	ctx := context.Background()
	// A first deployment warms the daemon up (its docker client, …).
	warm := project(t, strings.Replace(robustRouters, "GUESTS\n", `  - name: box2
    network: [{switch: sw0, ip: 10.0.0.30, gateway: 10.0.0.1}]
    docker: {image: `+image+`, command: [sleep, infinity]}
`, 1), nil)
	warmName := deployment(t, s, "rfw", warm)
	t.Cleanup(func() { removeContainers(cli, warmName, "box2") })
	mustSucceed(t, s, warmName, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, warmName, cmd(api.CmdUp))
	mustSucceed(t, s, warmName, cmd(api.CmdDown))
	base := baseGoroutines(t, s)
	settled := func(when string) {
		t.Helper()
		if n, ok := goroutinesAtMost(t, s, base+3); !ok {
			t.Errorf("goroutines %s: %d, %d at start", when, n, base)
		}
	}

	t.Run("routers", func(t *testing.T) {
		lab := generated(t, s, "rfr", strings.Replace(robustRouters, "GUESTS\n", "", 1), nil)
		name, st := lab.name, lab.st
		// A link in the way of r2's first port: r2 cannot be made.
		inTheWay := topology.RouterPortHostName(name, "r2", 0)
		if out, err := exec.Command("ip", "link", "add", inTheWay, "type", "veth", "peer", "name", "rob"+name[len(name)-6:]).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "link", "del", inTheWay).Run() })
		o, lines, _ := act(t, s, name, cmd(api.CmdUp))
		if o.ErrorCode != 1 {
			t.Fatalf("up with r2's port taken: code %d\n%s", o.ErrorCode, strings.Join(lines, "\n"))
		}
		if err := exec.Command("ip", "link", "show", inTheWay).Run(); err != nil {
			t.Errorf("the failed up removed link %s, which was there before it", inTheWay)
		}
		exec.Command("ip", "link", "del", inTheWay).Run()
		assertLabGone(t, cli, st)
		settled("after an up failed in the routers stage")
		mustSucceed(t, s, name, cmd(api.CmdUp))
		mustSucceed(t, s, name, cmd(api.CmdDown))
		assertLabGone(t, cli, st)
	})

	t.Run("guests", func(t *testing.T) {
		dir := project(t, strings.Replace(robustRouters, "GUESTS\n", `  - name: box
    network: [{switch: sw1, ip: dynamic}]
    docker: {image: "tbos-no-such-image:none", command: [sleep, infinity]}
  - name: box2
    network: [{switch: sw0, ip: 10.0.0.30, gateway: 10.0.0.1}]
    docker: {image: `+image+`, command: [sleep, infinity]}
`, 1), nil)
		name := deployment(t, s, "rfg", dir)
		t.Cleanup(func() { removeContainers(cli, name, "box", "box2") })
		mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
		st := state(t, s, name)
		o, lines, _ := act(t, s, name, cmd(api.CmdUp))
		if o.ErrorCode != 1 {
			t.Fatalf("up with a missing image: code %d\n%s", o.ErrorCode, strings.Join(lines, "\n"))
		}
		assertLabGone(t, cli, st)
		settled("after an up failed in the guests stage")
		mustSucceed(t, s, name, cmd(api.CmdDown))
		assertLabGone(t, cli, st)
	})

	t.Run("cancel", func(t *testing.T) {
		lab := generated(t, s, "rfc", strings.Replace(robustRouters, "GUESTS\n", "", 1), nil)
		name, st := lab.name, lab.st
		for _, after := range []time.Duration{0, 5, 10, 20, 30, 40, 60, 80, 100, 130} {
			id, err := s.c.Action(ctx, name, cmd(api.CmdUp))
			if err != nil {
				t.Fatal(err)
			}
			after *= time.Millisecond
			time.Sleep(after)
			if _, err := s.c.Cancel(ctx, name, id); err != nil {
				t.Logf("cancel after %v: %v", after, err)
			}
			var lines []string
			o, err := s.c.Follow(ctx, id, func(l string) { lines = append(lines, l) })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("cancelled after %v: code %d", after, o.ErrorCode)
			if o.ErrorCode == 0 {
				mustSucceed(t, s, name, cmd(api.CmdDown))
			}
			assertLabGone(t, cli, st)
			if t.Failed() {
				t.Fatalf("after a cancel %v into up:\n%s", after, strings.Join(lines, "\n"))
			}
		}
		settled("after cancelled ups")
	})
}

// TestRobustKill9DuringRoutedUp: the server is killed while an up of a
// routed lab runs (in the network, routers or acl stage); after a start,
// the action is interrupted and down, driven by the record, leaves
// nothing.
func TestRobustKill9DuringRoutedUp(t *testing.T) {
	nettest.RequireRoot(t)
	cli := dockertest.Client(t)
	s := startServer(t)
	ctx := context.Background()
	lab := generated(t, s, "rk9", strings.Replace(robustRouters, "GUESTS\n", "", 1), nil)
	name, st := lab.name, lab.st
	for _, after := range []time.Duration{5, 15, 30, 45, 60, 90, 120} {
		after *= time.Millisecond
		id, err := s.c.Action(ctx, name, cmd(api.CmdUp))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		s.kill9(t)
		s.start(t)
		o, err := s.c.Follow(ctx, id, func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killed %v into up: code %d", after, o.ErrorCode)
		lines := mustSucceed(t, s, name, cmd(api.CmdDown))
		assertLabGone(t, cli, st)
		if t.Failed() {
			t.Fatalf("after a kill %v into up, down:\n%s", after, strings.Join(lines, "\n"))
		}
	}
}
