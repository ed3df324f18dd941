package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

const powerLab = `machines:
  - name: probe
    network: [{switch: sw0, ip: 10.0.0.1}]
  - name: nsg
    network: [{switch: sw0, ip: 10.0.0.2}]
  - name: box
    network: [{switch: sw0, ip: 10.0.0.3}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// power runs the power action of a guest through the API and returns its
// log; the action must succeed and leave the deployment up.
func power(t *testing.T, s *server, name, guestName, state string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id, err := s.c.Power(ctx, name, guestName, state)
	if err != nil {
		t.Fatalf("power %s %s: %v", guestName, state, err)
	}
	var lines []string
	o, err := s.c.Follow(ctx, id, func(l string) { lines = append(lines, l) })
	if err != nil || o.ErrorCode != 0 || !o.EndState.Is(api.StateUp) {
		t.Fatalf("power %s %s: %+v %v:\n%s", guestName, state, o, err, strings.Join(lines, "\n"))
	}
	return strings.Join(lines, "\n")
}

func guestStatuses(t *testing.T, s *server, name string) map[string]string {
	t.Helper()
	raw, err := s.c.GuestsJSON(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var gs []api.Guest
	if err := json.Unmarshal(raw, &gs); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range gs {
		out[g.Name] = g.Status
	}
	return out
}

// TestPowerNetnsAndDocker: a netns guest and a container answer pings,
// answer none once stopped (also after an up, which leaves them stopped),
// and answer again once started; the deployment stays up throughout.
func TestPowerNetnsAndDocker(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := containerLab(t, s, "pw", powerLab, nil, "box")
	name, st, cli := lab.name, lab.st, lab.cli
	mustSucceed(t, s, name, cmd(api.CmdUp))
	probe := topology.NamespaceName(name, "probe")
	reach := func(ip string, want bool) {
		t.Helper()
		timeout := 5 * time.Second
		if !want {
			timeout = time.Second
		}
		err := nettest.Ping(probe, net.ParseIP(ip), timeout)
		if (err == nil) != want {
			t.Errorf("ping %s: %v, want answered %v", ip, err, want)
		}
	}
	reach("10.0.0.2", true)
	reach("10.0.0.3", true)

	log := power(t, s, name, "nsg", api.PowerStopped)
	if !strings.Contains(log, "links down") {
		t.Errorf("stop log:\n%s", log)
	}
	power(t, s, name, "box", api.PowerStopped)
	reach("10.0.0.2", false)
	reach("10.0.0.3", false)
	if st := guestStatuses(t, s, name); st["nsg"] != api.GuestStopped || st["box"] != api.GuestStopped || st["probe"] != api.GuestRunning {
		t.Errorf("statuses: %v", st)
	}
	var box *topology.Guest
	for i := range st.Guests {
		if st.Guests[i].Name == "box" {
			box = &st.Guests[i]
		}
	}
	if c, err := cli.ContainerInspect(context.Background(), box.Docker.Container, client.ContainerInspectOptions{}); err != nil || c.Container.State.Running {
		t.Errorf("container after stop: %v", err)
	}
	res, err := s.c.ExecAll(context.Background(), name, api.FanoutExecRequest{Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Results {
		if stopped := r.Guest != "probe"; stopped != (r.Error != "") {
			t.Errorf("fan-out exec with stopped guests: %+v", r)
		}
	}
	// up leaves stopped guests stopped.
	uplog := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(uplog, "guest box: stopped (kvm-compose stop): left stopped") {
		t.Errorf("up log:\n%s", uplog)
	}
	reach("10.0.0.3", false)

	power(t, s, name, "nsg", api.PowerRunning)
	power(t, s, name, "box", api.PowerRunning)
	reach("10.0.0.2", true)
	reach("10.0.0.3", true)
	power(t, s, name, "box", api.PowerRestarted)
	reach("10.0.0.3", true)
	if st := guestStatuses(t, s, name); st["nsg"] != api.GuestRunning || st["box"] != api.GuestRunning {
		t.Errorf("statuses after start: %v", st)
	}
	// The CLI's verbs.
	if code, out := kvmCompose(t, s, lab.dir, "--project-name", name, "stop", "nsg"); code != 0 {
		t.Errorf("kvm-compose stop: %d\n%s", code, out)
	}
	reach("10.0.0.2", false)
	if code, out := kvmCompose(t, s, lab.dir, "--project-name", name, "start", "nsg"); code != 0 {
		t.Errorf("kvm-compose start: %d\n%s", code, out)
	}
	reach("10.0.0.2", true)
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// TestPowerLibvirt: the kernel-boot test VM answers pings, none while
// stopped, and again once started.
func TestPowerLibvirt(t *testing.T) {
	libvirttest.Require(t)
	s := startServer(t)
	dir := vmProject(t, `machines:
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.11}]
    libvirt:
      cpus: 1
      memory_mb: 128
      libvirt_type:
        kernel: {kernel: vmlinux, initrd: initrd.gz}
  - name: probe
    network: [{switch: sw0, ip: 10.0.0.13}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`, nil)
	name := vmDeployment(t, s, "pwv", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	probe := topology.NamespaceName(name, "probe")
	vm := net.ParseIP("10.0.0.11")
	if err := nettest.Ping(probe, vm, 30*time.Second); err != nil {
		t.Fatalf("before stop: %v", err)
	}
	power(t, s, name, "vm1", api.PowerStopped)
	if err := nettest.Ping(probe, vm, time.Second); err == nil {
		t.Error("the stopped VM answered")
	}
	if st := guestStatuses(t, s, name); st["vm1"] != api.GuestStopped {
		t.Errorf("statuses: %v", st)
	}
	power(t, s, name, "vm1", api.PowerRunning)
	if err := nettest.Ping(probe, vm, 30*time.Second); err != nil {
		t.Errorf("after start: %v", err)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
}

// TestFanoutExec: one command in 10 guests at once, through the API and
// the CLI's table and JSON.
func TestFanoutExec(t *testing.T) {
	nettest.RequireRoot(t)
	var b strings.Builder
	b.WriteString("machines:\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "  - name: g%d\n    network: [{switch: sw0, ip: 10.0.0.%d}]\n", i, i+10)
	}
	b.WriteString("network:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\n")
	s := startServer(t)
	dir := project(t, b.String(), nil)
	name := deployment(t, s, "fan", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	start := time.Now()
	res, err := s.c.ExecAll(context.Background(), name, api.FanoutExecRequest{Command: []string{"sh", "-c", "sleep 1; ip -o -4 addr show dev eth0"}})
	if err != nil {
		t.Fatal(err)
	}
	// One after another takes 10 s.
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("10 guests × 1 s took %v: not concurrent", took)
	}
	if len(res.Results) != 10 {
		t.Fatalf("%d results", len(res.Results))
	}
	for i, r := range res.Results {
		if r.Guest != fmt.Sprintf("g%d", i+1) || r.ExitCode != 0 || !strings.Contains(r.Stdout, fmt.Sprintf("10.0.0.%d/24", i+11)) {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	code, out := kvmCompose(t, s, dir, "--project-name", name, "exec", "--guests", "g1,g3", "--", "sh", "-c", "echo hi; exit 3")
	if code != 1 || !strings.Contains(out, "GUEST") || !regexp.MustCompile(`(?m)^g3\s+3\s+hi$`).MatchString(out) {
		t.Errorf("exec --guests: %d\n%s", code, out)
	}
	code, out = kvmCompose(t, s, dir, "--project-name", name, "exec", "--all", "--json", "--", "true")
	var js api.FanoutExecResult
	if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil || len(js.Results) != 10 {
		t.Errorf("exec --all --json: %d %v\n%s", code, err, out)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
}

// TestTimelineLinkFlap: a timeline flaps a link twice; the gaps in a
// stream of pings start and last as planned, within 100 ms.
func TestTimelineLinkFlap(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, `machines:
  - name: probe
    network: [{switch: sw0, ip: 10.0.0.1}]
  - name: target
    network: [{switch: sw0, ip: 10.0.0.2}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
timeline:
  repeat: 2
  period: 1500ms
  changes:
    - {at: 500ms, guest: target, interface: eth0, link: down}
    - {at: 1s, guest: target, interface: eth0, link: up}
`, nil)
	name := deployment(t, s, "tl", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	p, err := nettest.NewPinger(topology.NamespaceName(name, "probe"), net.ParseIP("10.0.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Echo(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Each echo is recorded with the time it was sent and whether it was
	// answered: a gap runs from the first unanswered echo to the next
	// answered one, so a stall of the pinger itself (a loaded machine)
	// is no gap.
	type echo struct {
		sent time.Time
		ok   bool
	}
	stop := make(chan struct{})
	answered := make(chan []echo, 1)
	go func() {
		var echoes []echo
		for {
			select {
			case <-stop:
				answered <- echoes
				return
			default:
			}
			sent := time.Now()
			_, err := p.Echo(10 * time.Millisecond)
			echoes = append(echoes, echo{sent, err == nil})
			if err == nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	lines := mustSucceed(t, s, name, cmd(api.CmdTimeline))
	// The plan is relative to the time line's start, which its log says.
	t0 := timelineStart(t, lines)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	echoes := <-answered
	// A gap knows its edges as well as the echoes around them tell: the
	// link went down after the last answered echo before it was sent and
	// by the first unanswered one; up after the last unanswered one and
	// by the next answered one.
	type gap struct{ downLo, downHi, upLo, upHi time.Duration }
	var gaps []gap
	for i := 1; i < len(echoes); i++ {
		if echoes[i].ok {
			continue
		}
		j := i
		for j < len(echoes) && !echoes[j].ok {
			j++
		}
		if j < len(echoes) && echoes[j].sent.Sub(echoes[i].sent) > 200*time.Millisecond {
			gaps = append(gaps, gap{echoes[i-1].sent.Sub(t0), echoes[i].sent.Sub(t0), echoes[j-1].sent.Sub(t0), echoes[j].sent.Sub(t0)})
		}
		i = j
	}
	log := strings.Join(lines, "\n")
	if len(gaps) != 2 {
		t.Fatalf("ping gaps %+v, want 2\n%s", gaps, log)
	}
	within := func(plan, lo, hi time.Duration) bool {
		// A change half a gap (250 ms) off its plan is wrong; less may be
		// the timers of a loaded machine.
		return plan >= lo-250*time.Millisecond && plan <= hi+250*time.Millisecond
	}
	for i, g := range gaps {
		down := time.Duration(i)*1500*time.Millisecond + 500*time.Millisecond
		up := down + 500*time.Millisecond
		if !within(down, g.downLo, g.downHi) || !within(up, g.upLo, g.upHi) {
			t.Errorf("gap %d: down between +%v and +%v, up between +%v and +%v; planned +%v and +%v\n%s", i, g.downLo, g.downHi, g.upLo, g.upHi, down, up, log)
		}
	}
	if !strings.Contains(log, "drift p50") || strings.Count(log, "planned +") != 4 {
		t.Errorf("timeline log:\n%s", log)
	}
	t.Logf("ping gaps: %+v", gaps)
	mustSucceed(t, s, name, cmd(api.CmdDown))
}

var startLine = regexp.MustCompile(`timeline: \d+ changes in \d+ rounds over \S+, from (\S+)$`)

// timelineStart is when the time line of the log started, by the clock.
func timelineStart(t *testing.T, lines []string) time.Time {
	t.Helper()
	for _, l := range lines {
		if m := startLine.FindStringSubmatch(l); m != nil {
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				t.Fatalf("start line %q: %v", l, err)
			}
			return at
		}
	}
	t.Fatalf("no start in the log:\n%s", strings.Join(lines, "\n"))
	return time.Time{}
}
