package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/netplumb/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// requireNetem skips t (fails it under TESTBEDOS_REQUIRE_INTEGRATION=1)
// when the kernel has no netem qdisc: it tries one on a veth of its own.
func requireNetem(t *testing.T) {
	t.Helper()
	a, b := "tbnetemprobe0", "tbnetemprobe1"
	if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", b).CombinedOutput(); err != nil {
		t.Fatalf("make a veth to probe netem: %v: %s", err, out)
	}
	defer exec.Command("ip", "link", "del", a).Run()
	if out, err := exec.Command("tc", "qdisc", "add", "dev", a, "root", "netem", "delay", "1ms").CombinedOutput(); err != nil {
		testenv.Skipf(t, "the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM / module sch_netem): %s", strings.TrimSpace(string(out)))
	}
}

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
// time (100 ms on client) show in ping round trips.
func TestLiveNetemDelay(t *testing.T) {
	nettest.RequireRoot(t)
	requireNetem(t)
	s := startServer(t)
	dir := project(t, delayLab, nil)
	name := deployment(t, s, "delay", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)
	up := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(up, "guest web: impaired eth0 delay 50ms (yaml)") {
		t.Errorf("up log does not say web is delayed:\n%s", up)
	}
	if rtt, ok := avgRTT(t, s, name); !ok || rtt < 50*time.Millisecond || rtt > 150*time.Millisecond {
		t.Errorf("rtt with the YAML's 50 ms: %v (%v)", rtt, ok)
	}
	if _, err := s.c.SetImpairment(context.Background(), name, "client", "eth0", api.Impairment{Up: true, DelayMS: 100, JitterMS: 1}); err != nil {
		t.Fatal(err)
	}
	if rtt, ok := avgRTT(t, s, name); !ok || rtt < 145*time.Millisecond || rtt > 250*time.Millisecond {
		t.Errorf("rtt with 50 ms + 100 ms: %v (%v)", rtt, ok)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// TestNetemRefusedClearlyWithoutTheQdisc: where the kernel lacks netem, a
// delay is refused with a 422 that says why, and the record keeps what is
// in force.
func TestNetemRefusedClearlyWithoutTheQdisc(t *testing.T) {
	nettest.RequireRoot(t)
	a := "tbnetemprobe2"
	if out, err := exec.Command("ip", "link", "add", a, "type", "veth", "peer", "name", a+"p").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	err := exec.Command("tc", "qdisc", "add", "dev", a, "root", "netem", "delay", "1ms").Run()
	exec.Command("ip", "link", "del", a).Run()
	if err == nil {
		t.Skip("this kernel has netem: TestLiveNetemDelay covers it")
	}
	s := startServer(t)
	dir := project(t, strings.Replace(delayLab, "netem: {delay_ms: 50}", "", 1), nil)
	name := deployment(t, s, "nonetem", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)
	mustSucceed(t, s, name, cmd(api.CmdUp))
	ctx := context.Background()
	_, err = s.c.SetImpairment(ctx, name, "web", "eth0", api.Impairment{Up: true, DelayMS: 10})
	if err == nil || !strings.Contains(err.Error(), "netem") || !strings.Contains(err.Error(), "(422)") {
		t.Errorf("a delay without netem: %v, want a 422 naming netem", err)
	}
	if imp, err := s.c.Impairment(ctx, name, "web", "eth0"); err != nil || imp.Source != "yaml" || imp.DelayMS != 0 {
		t.Errorf("after the refusal: %+v, %v", imp, err)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}
