package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// TestSnapshotReadsLeaveTheDeploymentAlone is issue 7 defect 4: reading the
// snapshots of a namespace (a kind without snapshots) is a 422 GET, and
// neither it nor `kvm-compose snapshot list|info` changes the deployment:
// up stays up, and from down generate-artefacts still works.
func TestSnapshotReadsLeaveTheDeploymentAlone(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	dir := project(t, threeGuests, map[string]string{"web-setup.sh": "#!/bin/sh\necho web ready\n"})
	name := deployment(t, s, "snapr", dir)
	ctx := context.Background()
	cli := func(args ...string) (int, string) {
		t.Helper()
		return kvmCompose(t, s, dir, append([]string{"--project-name", name, "snapshot"}, args...)...)
	}
	stateIs := func(when string, want api.StateKind) {
		t.Helper()
		d, err := s.c.Deployment(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !d.State.Is(want) {
			t.Fatalf("%s: deployment is %v, want %s", when, d.State, want)
		}
	}
	refused := func(when string, status int, words string, err error) {
		t.Helper()
		if client.StatusOf(err) != status || !strings.Contains(err.Error(), words) {
			t.Errorf("%s: %v, want %d saying %q", when, err, status, words)
		}
	}

	// Before generate-artefacts nothing is known of the guests.
	_, err := s.c.Snapshots(ctx, name, "web")
	refused("snapshots before generate-artefacts", 409, "run generate-artefacts", err)

	// From down: the CLI says why it cannot list, and generate-artefacts
	// still works afterwards.
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	if code, out := cli("list", "web"); code == 0 || !strings.Contains(out, "guest web of kind netns has no snapshots") {
		t.Errorf("snapshot list of a namespace while down: exit %d\n%s", code, out)
	}
	stateIs("after snapshot list while down", api.StateDown)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))

	st := state(t, s, name)
	mustSucceed(t, s, name, cmd(api.CmdUp))
	before, err := s.c.Logs(ctx, name)
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.c.Snapshots(ctx, name, "web")
	refused("snapshots of a namespace", 422, "guest web of kind netns has no snapshots", err)
	_, err = s.c.Snapshot(ctx, name, "web", "s1")
	refused("a snapshot of a namespace", 422, "has no snapshots", err)
	_, err = s.c.Snapshots(ctx, name, "nobody")
	refused("snapshots of an unknown guest", 404, "has no guest nobody (guests: web, client1, client2)", err)
	_, err = s.c.Snapshots(ctx, "nope", "web")
	refused("snapshots of an unknown deployment", 404, "nope", err)
	stateIs("after the GETs", api.StateUp)

	for _, args := range [][]string{{"list", "web"}, {"info", "web", "s1"}, {"list", "nobody"}} {
		code, out := cli(args...)
		if code == 0 || !strings.Contains(out, "kvm-compose: server: ") || strings.Contains(out, "failed (error code") {
			t.Errorf("kvm-compose snapshot %v: exit %d, want a refusal, not a failed action\n%s", args, code, out)
		}
		stateIs("after kvm-compose snapshot "+strings.Join(args, " "), api.StateUp)
	}
	// Snapshot actions that cannot work are refused before they start, and
	// the old read sub-commands are not actions at all.
	_, err = s.c.Action(ctx, name, api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot, Snapshot: api.SnapshotOptions{SubCommand: "create", Guest: "web", Name: "s1"}}})
	refused("snapshot create of a namespace", 422, "has no snapshots", err)
	_, err = s.c.Action(ctx, name, api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot, Snapshot: api.SnapshotOptions{SubCommand: "list", Guest: "web"}}})
	refused("snapshot list as an action", 400, "GET /api/deployments/{name}/guests/{guest}/snapshots", err)
	stateIs("after the refused actions", api.StateUp)
	after, err := s.c.Logs(ctx, name)
	if err != nil || len(after) != len(before) {
		t.Errorf("reading snapshots recorded actions: %d before, %d after (%v)", len(before), len(after), err)
	}

	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
}
