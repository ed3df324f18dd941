package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

const twoOnSw0 = `machines:
  - name: a
    network: [{switch: sw0, ip: 10.0.0.10}]
  - name: b
    network: [{switch: sw0, ip: 10.0.0.11}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

func ipLink(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"link"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip link %v: %v: %s", args, err, out)
	}
}

func pings(t *testing.T, s *server, name, from, to string) bool {
	t.Helper()
	_, ok := execOK(t, s, name, from, "ping", "-c", "1", "-W", "1", to)
	return ok
}

// TestDeletedBridgeIsRepaired: a switch's bridge deleted by hand while the
// lab is up cuts its guests off. plan says so, up puts the guests'
// interfaces back on the bridge it makes again, and so does the restore at
// the server's start.
func TestDeletedBridgeIsRepaired(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, twoOnSw0, nil)
	name := deployment(t, s, "whole", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	st := state(t, s, name)
	bridge := st.Switches[0].Bridge
	if !pings(t, s, name, "a", "10.0.0.11") {
		t.Fatal("a does not reach b after up")
	}

	ipLink(t, "del", bridge)
	if pings(t, s, name, "a", "10.0.0.11") {
		t.Fatal("a still reaches b with the bridge gone")
	}
	p, err := s.c.Plan(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	repairs := map[string]bool{}
	for _, c := range p.Changes {
		if c.Op == api.OpRepair {
			repairs[string(c.Kind)+" "+c.Name] = true
		}
	}
	for _, want := range []string{"switch sw0", "guest a", "guest b"} {
		if !repairs[want] {
			t.Errorf("plan with the bridge deleted lacks a repair of %s: %+v", want, p.Changes)
		}
	}

	log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	for _, want := range []string{"bridge " + bridge + " made again", "guest a: eth0 was not on its switch sw0: put back", "guest b: eth0 was not on its switch sw0: put back"} {
		if !strings.Contains(log, want) {
			t.Errorf("up's log lacks %q:\n%s", want, log)
		}
	}
	if !pings(t, s, name, "a", "10.0.0.11") {
		t.Fatalf("a does not reach b after up repaired the switch:\n%s", log)
	}
	if p, err := s.c.Plan(context.Background(), name); err != nil || !p.Empty() {
		t.Errorf("plan after the repair: %+v, %v", p, err)
	}

	// The restore at start sees the same and repairs it.
	d, err := s.c.Deployment(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	s.stop(t)
	ipLink(t, "del", bridge)
	s.start(t)
	_, rlog := restoreLog(t, s, name, *d.LastActionUUID)
	if !strings.Contains(rlog, "put back on bridge "+bridge) {
		t.Errorf("the restore did not put the guests back:\n%s", rlog)
	}
	if !pings(t, s, name, "a", "10.0.0.11") {
		t.Fatalf("a does not reach b after the restore:\n%s", rlog)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// TestForeignBridgeIsRefused: a bridge of the deployment's name that the
// record does not hold (another server's, made by hand) makes up fail
// naming it, and neither up nor down touch it.
func TestForeignBridgeIsRefused(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "foreign", twoOnSw0, nil)
	name, st := lab.name, lab.st
	bridge := st.Switches[0].Bridge
	ipLink(t, "add", "name", bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })

	o, lines, _ := act(t, s, name, cmd(api.CmdUp))
	log := strings.Join(lines, "\n")
	if o.ErrorCode == 0 || !strings.Contains(log, "bridge "+bridge+" on ") || !strings.Contains(log, "did not make") {
		t.Fatalf("up with a foreign bridge: %+v\n%s", o, log)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	if out, err := exec.Command("ip", "link", "show", bridge).CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("the foreign bridge is gone after up and down: %s", out)
		}
		t.Fatal(err)
	}
	for _, g := range st.Guests {
		if _, err := os.Stat(nettest.NamespacePath(g.Netns.Namespace)); err == nil {
			t.Errorf("guest %s's namespace exists after the refused up", g.Name)
		}
	}
}
