package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

const delayLab = `machines:
  - name: web
    network:
      - switch: sw0
        ip: 10.0.0.10
        netem: {delay_ms: 50}
  - name: client
    network:
      - switch: sw0
        ip: 10.0.0.20
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestLiveNetemDelay: a delay in the YAML (50 ms on web) and one set at run
// time (100 ms on client) show in ping round trips, on the kernel's netem
// or, where the kernel has none, the userspace fallback; a loss drops
// about its share; clearing brings the round trip back; a run-time setting
// survives a server restart, shows in plan, and apply sets it back; a
// YAML netem change is applied in place (the namespace stays).
func TestLiveNetemDelay(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "delay", delayLab, nil)
	name, dir, st := lab.name, lab.dir, lab.st
	up := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(up, "guest web: impaired eth0 delay 50ms (yaml)") {
		t.Errorf("up log does not say web is delayed:\n%s", up)
	}
	web := guestOf(st, "web")
	nsPath := nettest.NamespacePath(web.Netns.Namespace)
	webInode := inode(t, nsPath)
	fallback := !kernelHasNetem(t)
	t.Logf("kernel netem: %v", !fallback)
	if fallback && !hasImpairTable(t, nsPath, web.Interfaces[0].HostName) {
		t.Error("no userspace impairment table in web's namespace")
	}
	rttIn := func(what string, lo, hi time.Duration) {
		t.Helper()
		rtt, ok := avgRTT(t, s, name)
		t.Logf("rtt %s: %v", what, rtt)
		if !ok || rtt < lo || rtt > hi {
			t.Errorf("rtt %s: %v (%v), want %v..%v", what, rtt, ok, lo, hi)
		}
	}
	rttIn("with the YAML's 50 ms", 50*time.Millisecond, 150*time.Millisecond)
	ctx := context.Background()
	if _, err := s.c.SetImpairment(ctx, name, "client", "eth0", api.Impairment{Up: true, DelayMS: 100, JitterMS: 1}); err != nil {
		t.Fatal(err)
	}
	client := guestOf(st, "client")
	if fallback && !hasImpairTable(t, nettest.NamespacePath(client.Netns.Namespace), client.Interfaces[0].HostName) {
		t.Error("no userspace impairment table in client's namespace")
	}
	rttIn("with 50 ms + 100 ms", 145*time.Millisecond, 250*time.Millisecond)

	// A loss of 50% on client's link drops about half the replies.
	if _, err := s.c.SetImpairment(ctx, name, "client", "eth0", api.Impairment{Up: true, LossPct: 50}); err != nil {
		t.Fatal(err)
	}
	if got := received(t, s, name, 60); got < 15 || got > 45 {
		t.Errorf("with 50%% loss %d of 60 pings answered", got)
	} else {
		t.Logf("with 50%% loss %d of 60 pings answered", got)
	}
	// Cleared: the YAML's 50 ms alone.
	if _, err := s.c.SetImpairment(ctx, name, "client", "eth0", api.Impairment{Up: true}); err != nil {
		t.Fatal(err)
	}
	rttIn("after clearing client", 50*time.Millisecond, 150*time.Millisecond)

	// A run-time delay on web survives a restart and shows in plan.
	if _, err := s.c.SetImpairment(ctx, name, "web", "eth0", api.Impairment{Up: true, DelayMS: 100}); err != nil {
		t.Fatal(err)
	}
	s.stop(t)
	s.start(t)
	rttIn("with web's run-time 100 ms after a restart", 100*time.Millisecond, 200*time.Millisecond)
	p, err := s.c.Plan(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Op != api.OpImpair || p.Changes[0].Name != "web" ||
		!strings.Contains(p.Changes[0].Why, "eth0: runtime delay 100ms → yaml delay 50ms") {
		t.Fatalf("plan with a run-time delay: %+v", p.Changes)
	}
	mustSucceed(t, s, name, cmd(api.CmdApply))
	rttIn("after apply set web back to the YAML", 50*time.Millisecond, 150*time.Millisecond)
	if imp, err := s.c.Impairment(ctx, name, "web", "eth0"); err != nil || imp.Source != "yaml" || imp.DelayMS != 50 {
		t.Errorf("web eth0 after apply: %+v, %v", imp, err)
	}
	if p, err := s.c.Plan(ctx, name); err != nil || !p.Empty() {
		t.Errorf("plan after apply: %+v, %v", p, err)
	}

	// The YAML's netem changed: apply changes it in place.
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(strings.Replace(delayLab, "delay_ms: 50", "delay_ms: 120", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err = s.c.Plan(ctx, name)
	if err != nil || len(p.Changes) != 1 || p.Changes[0].Op != api.OpImpair || p.Changes[0].Name != "web" {
		t.Fatalf("plan after a YAML netem change: %+v, %v", p.Changes, err)
	}
	mustSucceed(t, s, name, cmd(api.CmdApply))
	if got := inode(t, nsPath); got != webInode {
		t.Errorf("web's namespace was re-made (inode %d, was %d)", got, webInode)
	}
	rttIn("with the YAML's 120 ms", 120*time.Millisecond, 220*time.Millisecond)

	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// received sends n pings 50 ms apart from client to web and counts the
// replies.
func received(t *testing.T, s *server, name string, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := []string{"ping", "-n", "-q", "-c", strconv.Itoa(n), "-i", "0.05", "-W", "1", "10.0.0.10"}
	res, err := s.c.Exec(ctx, name, "client", api.ExecRequest{Command: argv, TimeoutS: 30})
	if err != nil {
		t.Fatalf("exec ping: %v", err)
	}
	m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("ping output: %s", res.Stdout)
	}
	got, _ := strconv.Atoi(m[1])
	return got
}

// kernelHasNetem tries a netem qdisc on a veth of its own.
func kernelHasNetem(t *testing.T) bool {
	t.Helper()
	a := "tbnetemprobe2"
	if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", a+"p").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer exec.Command("ip", "link", "del", a).Run()
	return exec.Command("tc", "qdisc", "add", "dev", a, "root", "netem", "delay", "1ms").Run() == nil
}

// hasImpairTable reports whether the namespace at nsPath holds the
// userspace fallback's IPv4 table for host-side link.
func hasImpairTable(t *testing.T, nsPath, link string) bool {
	t.Helper()
	f, err := os.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == "testbedos-impair-"+link {
			return true
		}
	}
	return false
}
