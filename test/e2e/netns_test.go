package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

const threeGuests = `machines:
  - name: web
    network:
      - switch: sw0
        ip: 10.0.0.10
    netns:
      setup_script: web-setup.sh
  - name: client1
    network:
      - switch: sw0
        ip: 10.0.0.21
  - name: client2
    network:
      - switch: sw0
        ip: 10.0.0.22
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestQuickstartUpPingDown is the walking skeleton end to end: create,
// generate-artefacts, up with the log followed live, every guest pings
// every other, down, nothing left.
func TestQuickstartUpPingDown(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, threeGuests, map[string]string{
		"web-setup.sh": "#!/bin/sh\necho \"setting up $TESTBEDOS_GUEST of $TESTBEDOS_DEPLOYMENT\"\nip -o -4 addr show dev eth0\n",
	})
	name := deployment(t, s, "qs", dir)

	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)
	if len(st.Guests) != 3 || st.Deployment != name {
		t.Fatalf("state has %d guests for %q", len(st.Guests), st.Deployment)
	}

	lines := mustSucceed(t, s, name, cmd(api.CmdUp))
	log := strings.Join(lines, "\n")
	for _, want := range []string{"[web] setting up web of " + name, "[web] ", "10.0.0.10/24", "==> up [6/6] end"} {
		if !strings.Contains(log, want) {
			t.Errorf("up log lacks %q:\n%s", want, log)
		}
	}
	d, _ := s.c.Deployment(context.Background(), name)
	if !d.State.Is(api.StateUp) {
		t.Fatalf("state after up = %v", d.State)
	}

	for _, from := range st.Guests {
		for _, to := range st.Guests {
			if from.Name == to.Name {
				continue
			}
			ip, _, _ := net.ParseCIDR(to.Interfaces[0].Address)
			if err := nettest.Ping(from.Netns.Namespace, ip, 5*time.Second); err != nil {
				t.Errorf("%s -> %s (%s): %v", from.Name, to.Name, ip, err)
			}
		}
	}

	// up again is idempotent: nothing re-made, scripts not re-run.
	again := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(again, "guest web: already up") || strings.Contains(again, "[web] setting up") {
		t.Errorf("second up was not idempotent:\n%s", again)
	}

	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	d, _ = s.c.Deployment(context.Background(), name)
	if !d.State.Is(api.StateDown) {
		t.Fatalf("state after down = %v", d.State)
	}
	// down is idempotent.
	mustSucceed(t, s, name, cmd(api.CmdDown))

	idx, err := s.c.Logs(context.Background(), name)
	if err != nil || len(idx) != 5 {
		t.Fatalf("logs index has %d entries, want 5: %v", len(idx), err)
	}
	for id, e := range idx {
		if e.ErrorCode == nil || *e.ErrorCode != 0 || e.EndState == nil || e.DurationMS == nil {
			t.Errorf("index entry %s = %+v", id, e)
		}
	}
}

func TestBadYAMLIs422NamingTheLine(t *testing.T) {
	s := startServer(t)
	bad := strings.Replace(threeGuests, "ip: 10.0.0.22", "ip: 10.1.0.22", 1)
	dir := project(t, bad, map[string]string{"web-setup.sh": "#!/bin/sh\n"})
	name := deployment(t, s, "bad", dir)
	_, err := s.c.Action(context.Background(), name, cmd(api.CmdGenerateArtefacts))
	if client.StatusOf(err) != 422 {
		t.Fatalf("generate-artefacts of a bad topology: %v, want 422", err)
	}
	if !strings.Contains(err.Error(), "kvm-compose.yaml:15: machines[2].network[0].ip") {
		t.Fatalf("error does not name file, line and field: %v", err)
	}
	syntax := project(t, "machines:\n  - name: [unclosed\n", nil)
	name2 := deployment(t, s, "syntax", syntax)
	if _, err := s.c.Action(context.Background(), name2, cmd(api.CmdGenerateArtefacts)); client.StatusOf(err) != 422 || !strings.Contains(err.Error(), "kvm-compose.yaml:") {
		t.Fatalf("syntax error: %v", err)
	}
	// A setup script outside the project folder, by .. or by symlink.
	outside := t.TempDir() + "/evil.sh"
	os.WriteFile(outside, []byte("#!/bin/sh\n"), 0o755)
	for _, script := range []string{"../evil.sh", outside, "link.sh"} {
		yaml := strings.Replace(threeGuests, "setup_script: web-setup.sh", "setup_script: "+script, 1)
		dir := project(t, yaml, nil)
		os.Symlink(outside, filepath.Join(dir, "link.sh"))
		esc := deployment(t, s, "esc", dir)
		_, err := s.c.Action(context.Background(), esc, cmd(api.CmdGenerateArtefacts))
		if client.StatusOf(err) != 422 || !strings.Contains(err.Error(), "machines[0].netns.setup_script") {
			t.Errorf("setup_script %s: %v, want 422 naming the field", script, err)
		}
	}
	d, _ := s.c.Deployment(context.Background(), name)
	if d.LastActionUUID != nil || !d.State.Is(api.StateDown) {
		t.Fatalf("a refused action was recorded: %+v", d)
	}
	if _, err := s.c.Action(context.Background(), name, cmd(api.CmdUp)); client.StatusOf(err) != 409 {
		t.Fatalf("up before generate-artefacts: %v, want 409", err)
	}
}

func TestFailingSetupScriptFailsTheAction(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := generated(t, s, "fail", threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho about to fail\nexit 3\n"})
	name, st := lab.name, lab.st
	o, lines, id := act(t, s, name, cmd(api.CmdUp))
	if o.ErrorCode == 0 || !o.EndState.Is(api.StateFailed) || o.EndState.Failed.Name != api.CmdUp {
		t.Fatalf("outcome = %+v", o)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "[web] about to fail") {
		t.Fatalf("script output missing from the log:\n%s", strings.Join(lines, "\n"))
	}
	e, _ := s.c.LogEntry(context.Background(), id)
	if e.ErrorCode == nil || *e.ErrorCode == 0 || !strings.Contains(e.Error, "3") {
		t.Fatalf("log entry = %+v", e)
	}
	d, _ := s.c.Deployment(context.Background(), name)
	if !d.State.Is(api.StateFailed) {
		t.Fatalf("state = %v", d.State)
	}
	// The guests stay for inspection; down removes them.
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// TestCancelMidUpLeavesNothing cancels an up twice: once while guests are
// being made, once while a setup script runs.
func TestCancelMidUpLeavesNothing(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	var yaml strings.Builder
	yaml.WriteString("machines:\n")
	for i := range 40 {
		script := ""
		if i == 0 {
			script = "    netns: {setup_script: slow.sh}\n"
		}
		fmt.Fprintf(&yaml, "  - name: g%d\n    network: [{switch: sw0, ip: 10.0.1.%d}]\n%s", i, i+10, script)
	}
	yaml.WriteString("network:\n  switches:\n    sw0: {subnet: 10.0.1.0/24}\n")
	lab := generated(t, s, "cancel", yaml.String(), map[string]string{"slow.sh": "#!/bin/sh\necho sleeping\nsleep 60\n"})
	name, st := lab.name, lab.st
	ctx := context.Background()

	for _, when := range []string{"guests", "setup"} {
		t.Run(when, func(t *testing.T) {
			id, err := s.c.Action(ctx, name, cmd(api.CmdUp))
			if err != nil {
				t.Fatal(err)
			}
			cancelled := false
			var lines []string
			o, err := s.c.Follow(ctx, id, func(l string) {
				lines = append(lines, l)
				trigger := (when == "guests" && strings.Contains(l, "==> up [4/6] guests")) ||
					(when == "setup" && strings.Contains(l, "[g0] sleeping"))
				if trigger && !cancelled {
					cancelled = true
					if _, err := s.c.Cancel(ctx, name, id); err != nil {
						t.Error(err)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if !cancelled || o.ErrorCode != api.ErrorCodeCancelled {
				t.Fatalf("cancelled=%v outcome=%+v\n%s", cancelled, o, strings.Join(lines, "\n"))
			}
			assertNothingLeft(t, st)
		})
	}
}
