package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// applyBefore is three guests; web's setup script leaves a process running
// in its namespace and writes its pid next to the YAML.
const applyBefore = `machines:
  - name: web
    network: [{switch: sw0, ip: 10.0.0.10}]
    netns: {setup_script: web-setup.sh}
  - name: client1
    network: [{switch: sw0, ip: 10.0.0.21}]
  - name: client2
    network: [{switch: sw0, ip: 10.0.0.22}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// applyAfter removes client1, changes client2's address and adds two
// guests on a new switch; web is as it was.
const applyAfter = `machines:
  - name: web
    network: [{switch: sw0, ip: 10.0.0.10}]
    netns: {setup_script: web-setup.sh}
  - name: client2
    network: [{switch: sw0, ip: 10.0.0.23}]
  - name: n1
    network: [{switch: sw1, ip: 10.0.1.1}]
  - name: n2
    network: [{switch: sw1, ip: 10.0.1.2}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
    sw1: {subnet: 10.0.1.0/24}
`

// backgroundScript starts a process that outlives the script and records
// its pid in the project folder.
const backgroundScript = "#!/bin/sh\nsleep 1000 >/dev/null 2>&1 &\necho $! > \"$TESTBEDOS_GUEST.pid\"\n"

// inode is the inode of a file (a namespace's /run/netns entry, a
// process's /proc/<pid>/ns/net).
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// backgroundPid reads the pid web's setup script left and kills that
// process when the test ends.
func backgroundPid(t *testing.T, dir, guest string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, guest+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

func guestOf(st topology.State, name string) topology.Guest {
	for _, g := range st.Guests {
		if g.Name == name {
			return g
		}
	}
	return topology.Guest{}
}

func addrOf(g topology.Guest) net.IP {
	ip, _, _ := net.ParseCIDR(g.Interfaces[0].Address)
	return ip
}

// TestApplyChangesOnlyWhatChanged: up three guests, change the YAML (one
// removed, two added on a new switch, one address changed); the plan names
// exactly those; apply keeps the unchanged guest's namespace and process.
func TestApplyChangesOnlyWhatChanged(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, applyBefore, map[string]string{"web-setup.sh": backgroundScript})
	name := deployment(t, s, "apply", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	before := state(t, s, name)
	web := guestOf(before, "web")
	nsPath := nettest.NamespacePath(web.Netns.Namespace)
	webInode := inode(t, nsPath)
	pid := backgroundPid(t, dir, "web")
	if got := inode(t, fmt.Sprintf("/proc/%d/ns/net", pid)); got != webInode {
		t.Fatalf("web's background process is not in web's namespace (%d, %d)", got, webInode)
	}

	ctx := context.Background()
	if p, err := s.c.Plan(ctx, name); err != nil || !p.Empty() {
		t.Fatalf("plan before any change: %+v, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(applyAfter), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := s.c.Plan(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, string(c.Op)+" "+string(c.Kind)+" "+c.Name)
	}
	want := []string{"remove guest client1", "remake guest client2", "add switch sw1", "add guest n1", "add guest n2"}
	if !slices.Equal(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	if why := p.Changes[1].Why; why != "interfaces[0].address 10.0.0.22/24 → 10.0.0.23/24" {
		t.Errorf("why client2 is re-made: %q", why)
	}
	var kept []string
	for _, o := range p.Unchanged {
		kept = append(kept, string(o.Kind)+" "+o.Name)
	}
	if !slices.Equal(kept, []string{"switch sw0", "guest web"}) {
		t.Errorf("unchanged %v", kept)
	}
	// Plan changed nothing.
	if _, err := os.Stat(nettest.NamespacePath(guestOf(before, "client1").Netns.Namespace)); err != nil {
		t.Fatalf("plan removed client1: %v", err)
	}

	// The CLI prints the plan as a diff, and runs apply as it runs up.
	code, out := kvmCompose(t, s, dir, "--project-name", name, "plan")
	for _, w := range []string{"- guest client1\n", "~ guest client2 (re-made): interfaces[0].address 10.0.0.22/24 → 10.0.0.23/24\n", "+ switch sw1\n", "+ guest n1\n", "+ guest n2\n", "2 unchanged"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("kvm-compose plan (exit %d) lacks %q:\n%s", code, w, out)
		}
	}
	code, lines := kvmCompose(t, s, dir, "--project-name", name, "apply")
	if code != 0 {
		t.Fatalf("kvm-compose apply: exit %d\n%s", code, lines)
	}
	for _, w := range []string{"==> apply [1/", "guest client1: removed", "guest web: already up", "guest n1: netns up", "==> apply succeeded"} {
		if !strings.Contains(lines, w) {
			t.Errorf("apply log lacks %q:\n%s", w, lines)
		}
	}
	if strings.Contains(lines, "\r") {
		t.Error("apply printed progress for a terminal into a pipe")
	}
	if strings.Contains(lines, "[web] ") {
		t.Errorf("apply re-ran web's setup script:\n%s", lines)
	}
	after := state(t, s, name)
	if len(after.Guests) != 4 {
		t.Fatalf("state after apply has %d guests", len(after.Guests))
	}
	if got := inode(t, nsPath); got != webInode {
		t.Errorf("web's namespace was re-made (inode %d, was %d)", got, webInode)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("web's background process %d is gone: %v", pid, err)
	}
	if _, err := os.Stat(nettest.NamespacePath(guestOf(before, "client1").Netns.Namespace)); err == nil {
		t.Error("client1's namespace is still there")
	}
	n1, n2, c2 := guestOf(after, "n1"), guestOf(after, "n2"), guestOf(after, "client2")
	for _, pair := range [][2]topology.Guest{{n1, n2}, {n2, n1}, {web, c2}, {c2, web}} {
		if err := nettest.Ping(pair[0].Netns.Namespace, addrOf(pair[1]), 5*time.Second); err != nil {
			t.Errorf("%s -> %s (%s): %v", pair[0].Name, pair[1].Name, addrOf(pair[1]), err)
		}
	}
	if p, err := s.c.Plan(ctx, name); err != nil || !p.Empty() {
		t.Errorf("plan after apply: %+v, %v", p, err)
	}
	// deployment info lists the guests of the new state.
	code, out = kvmCompose(t, s, dir, "--project-name", name, "deployment", "info")
	for _, w := range []string{"deployment " + name + ": up", "eth0 10.0.1.1/24 on sw1", "eth0 10.0.0.23/24 on sw0"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("deployment info (exit %d) lacks %q:\n%s", code, w, out)
		}
	}
	if !strings.Contains(out, "n2") || strings.Contains(out, "client1") || strings.Count(out, "running") != 4 {
		t.Errorf("deployment info does not list the four running guests:\n%s", out)
	}
	d, _ := s.c.Deployment(ctx, name)
	if !d.State.Is(api.StateUp) {
		t.Errorf("state after apply %v", d.State)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, after)
}

// removeByHand deletes what a reboot would: the deployment's namespaces
// (after killing what runs in them), its veths and its bridges.
func removeByHand(t *testing.T, st topology.State, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	nettest.RemoveAll(netnsPrefix(st.Deployment))
	for range 500 {
		nettest.RemoveAll(st.Prefix)
		links, namespaces, err := nettest.Leftovers(st.Prefix)
		_, ns2, err2 := nettest.Leftovers(netnsPrefix(st.Deployment))
		if err == nil && err2 == nil && len(links)+len(namespaces)+len(ns2) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the deployment's links did not go away")
}

// TestRestoreAfterRestart: the server stops, the deployment's namespaces
// and bridges are deleted by hand (as a reboot does); at start the server
// brings them back with its own up, logged as a restore. With
// TESTBEDOS_RESTORE=off it marks the deployment failed instead.
func TestRestoreAfterRestart(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, applyBefore, map[string]string{"web-setup.sh": backgroundScript})
	name := deployment(t, s, "restore", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	st := state(t, s, name)
	ctx := context.Background()
	d, _ := s.c.Deployment(ctx, name)
	upID := *d.LastActionUUID

	s.stop(t)
	removeByHand(t, st, backgroundPid(t, dir, "web"))
	s.start(t)

	// The restore action is the deployment's new last action.
	restoreID, log := restoreLog(t, s, name, upID)
	web := guestOf(st, "web")
	for _, w := range []string{"==> up on deployment " + name, "restore: after a restart, missing: bridge " + st.Switches[0].Bridge, "namespace " + web.Netns.Namespace, "guest web: netns up"} {
		if !strings.Contains(log, w) {
			t.Errorf("restore log lacks %q:\n%s", w, log)
		}
	}
	backgroundPid(t, dir, "web") // the setup script ran again
	for _, from := range st.Guests {
		for _, to := range st.Guests {
			if from.Name != to.Name {
				if err := nettest.Ping(from.Netns.Namespace, addrOf(to), 5*time.Second); err != nil {
					t.Errorf("after restore %s -> %s: %v", from.Name, to.Name, err)
				}
			}
		}
	}

	// A restart with everything there changes nothing.
	s.stop(t)
	s.start(t)
	time.Sleep(300 * time.Millisecond)
	if d, _ = s.c.Deployment(ctx, name); *d.LastActionUUID != restoreID || !d.State.Is(api.StateUp) {
		t.Errorf("a restart with nothing missing started an action or changed the state: %+v", d)
	}

	// With restore off, the deployment is marked failed.
	s.stop(t)
	removeByHand(t, st, backgroundPid(t, dir, "web"))
	s.env = append(s.env, "TESTBEDOS_RESTORE=off")
	s.start(t)
	for range 500 {
		if d, _ = s.c.Deployment(ctx, name); d.State.Is(api.StateFailed) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !d.State.Is(api.StateFailed) || d.State.Failed == nil || d.State.Failed.Name != api.CmdUp || *d.LastActionUUID != restoreID {
		t.Fatalf("with restore off: %+v, want failed up and no new action", d)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// restoreLog waits for the action the server starts by itself after upID
// (its restore), follows it to its end and returns its uuid and log; the
// restore must succeed and leave the deployment up.
func restoreLog(t *testing.T, s *server, name, upID string) (id, log string) {
	t.Helper()
	ctx := context.Background()
	var restoreID string
	for range 500 {
		if d, _ := s.c.Deployment(ctx, name); d.LastActionUUID != nil && *d.LastActionUUID != upID {
			restoreID = *d.LastActionUUID
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if restoreID == "" {
		t.Fatalf("no restore action after the restart:\n%s", s.stderr)
	}
	var lines []string
	o, err := s.c.Follow(ctx, restoreID, func(l string) { lines = append(lines, l) })
	log = strings.Join(lines, "\n")
	if err != nil || o.ErrorCode != 0 || !o.EndState.Is(api.StateUp) {
		t.Fatalf("restore: %+v, %v\n%s", o, err, log)
	}
	return restoreID, log
}
