package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// ipCmd runs iproute2 to make objects the server did not make.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// linkExists reports whether a link or named namespace exists.
func exists(t *testing.T, kind, name string) bool {
	t.Helper()
	switch kind {
	case "link":
		return exec.Command("ip", "link", "show", "dev", name).Run() == nil
	default:
		_, err := os.Stat(nettest.NamespacePath(name))
		return err == nil
	}
}

// Defect 1 of issue 7: a second deployment of the quickstart folder, or a
// PUT of an up deployment's folder, must not take over what is deployed.
func TestTwoDeploymentsCannotShareAFolder(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho ok\n"})
	name := deployment(t, s, "share", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	st := state(t, s, name)

	ctx := context.Background()
	alias := filepath.Join(t.TempDir(), "alias")
	os.Symlink(dir, alias)
	for _, loc := range []string{dir, alias} {
		_, err := s.c.CreateDeployment(ctx, uniqueName("q2"), loc)
		if client.StatusOf(err) != 409 || !strings.Contains(err.Error(), name) {
			t.Errorf("create at %s: %v, want 409 naming %s", loc, err, name)
		}
	}
	other := project(t, threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\n"})
	if _, err := s.c.UpdateDeployment(ctx, name, other); client.StatusOf(err) != 409 {
		t.Errorf("PUT of an up deployment: %v, want 409", err)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}

// Defect 2 of issue 7: down works from the server's own record, whatever
// happened to the project folder, and never removes what the deployment
// did not make.
func TestDownTrustsOnlyTheRecord(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho ok\n"})
	name := deployment(t, s, "rec", dir)

	// rm -rf artefacts while up: down still removes everything, and
	// generate-artefacts works again.
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	mustSucceed(t, s, name, cmd(api.CmdUp))
	st := state(t, s, name)
	if err := os.RemoveAll(filepath.Join(dir, "artefacts")); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))

	// An edited state.json names a bridge and a namespace of someone else:
	// down leaves them, and removes what the deployment made.
	mustSucceed(t, s, name, cmd(api.CmdUp))
	prefix := nettest.Prefix(t)
	foreignBridge, foreignNS := prefix+"br", prefix+"-ns"
	ipCmd(t, "link", "add", foreignBridge, "type", "bridge")
	ipCmd(t, "netns", "add", foreignNS)
	path := topology.StatePath(dir)
	raw, _ := os.ReadFile(path)
	var edited topology.State
	json.Unmarshal(raw, &edited)
	edited.Switches[0].Bridge = foreignBridge
	for i := range edited.Guests {
		edited.Guests[i].Interfaces[0].Bridge = foreignBridge
	}
	edited.Guests[0].Netns.Namespace = foreignNS
	if err := topology.WriteState(path, &edited); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	if !exists(t, "link", foreignBridge) || !exists(t, "netns", foreignNS) {
		t.Fatalf("down removed a bridge or namespace the deployment never made")
	}

	// The project's state.json is a copy for the user, never read back:
	// up with an edited copy (foreign names, a setup script outside the
	// project) makes the deployment's own guests and runs only its own
	// scripts.
	marker := filepath.Join(t.TempDir(), "ran")
	outside := filepath.Join(t.TempDir(), "evil.sh")
	os.WriteFile(outside, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	json.Unmarshal(raw, &edited)
	edited.Guests[0].SetupScript = outside
	edited.Guests[0].Netns.Namespace = foreignNS
	topology.WriteState(path, &edited)
	mustSucceed(t, s, name, cmd(api.CmdUp))
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a script outside the project ran")
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	if !exists(t, "netns", foreignNS) {
		t.Fatalf("up or down touched a namespace the deployment never made")
	}
	assertNothingLeft(t, st)
}

// Defect 8 of issue 7: generate-artefacts never writes through a symlink
// out of the project folder.
func TestArtefactsDoNotFollowSymlinksOut(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\n"})
	name := deployment(t, s, "sym", dir)
	victim := t.TempDir()

	// artefacts/ itself points outside: refused, nothing written there.
	if err := os.Symlink(victim, filepath.Join(dir, "artefacts")); err != nil {
		t.Fatal(err)
	}
	if o, _, _ := act(t, s, name, cmd(api.CmdGenerateArtefacts)); o.ErrorCode != api.ErrorCodeFailed {
		t.Fatalf("generate-artefacts through a symlinked artefacts folder: %+v", o)
	}
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Fatalf("wrote outside the project: %v", entries)
	}

	// state.json and the ssh folder point outside: replaced, not followed.
	os.Remove(filepath.Join(dir, "artefacts"))
	os.MkdirAll(filepath.Join(dir, "artefacts"), 0o755)
	target := filepath.Join(victim, "passwd")
	os.WriteFile(target, []byte("root:x:0:0\n"), 0o644)
	os.Symlink(target, filepath.Join(dir, "artefacts", "state.json"))
	os.Symlink(victim, filepath.Join(dir, "artefacts", "ssh"))
	o, lines, _ := act(t, s, name, cmd(api.CmdGenerateArtefacts))
	if data, _ := os.ReadFile(target); string(data) != "root:x:0:0\n" {
		t.Fatalf("a file outside the project was overwritten: %q", data)
	}
	if entries, _ := os.ReadDir(victim); len(entries) != 1 {
		t.Fatalf("wrote outside the project: %v", entries)
	}
	if o.ErrorCode == api.ErrorCodeOK {
		if fi, err := os.Lstat(filepath.Join(dir, "artefacts", "state.json")); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("state.json after generate: %v, %v", fi, err)
		}
	} else if !strings.Contains(strings.Join(lines, "\n"), "ssh") {
		t.Fatalf("generate-artefacts failed without naming the ssh folder:\n%s", strings.Join(lines, "\n"))
	}
}
