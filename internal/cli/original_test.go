package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// TestOriginalVerbsAndFlags: the original kvm-compose's verbs and flags
// that do not clash with ours are accepted and do what they say.
func TestOriginalVerbsAndFlags(t *testing.T) {
	e := newCLIEnv(t)
	runNow := func(args ...string) (int, string, string) {
		_, wait := e.run(args...)
		return wait()
	}

	code, out, errOut := runNow("cloud-images")
	if code != 0 || !strings.Contains(out, "ubuntu_20_04") || !strings.Contains(out, "cirros_0_6_2") || !strings.Contains(out, "CACHED") {
		t.Errorf("cloud-images: %d\n%s%s", code, out, errOut)
	}

	if code, _, errOut := runNow("--verbosity", "loud", "-p", "lab", "down"); code != 1 || !strings.Contains(errOut, "use one of error, warn, info, debug, trace") {
		t.Errorf("--verbosity loud: %d %s", code, errOut)
	}
	if code, out, errOut := runNow("--verbosity", "error", "-p", "lab", "down"); code != 0 || strings.Contains(out+errOut, "down") {
		t.Errorf("--verbosity error should print nothing of a successful action: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runNow("-p", "lab", "up", "--reapply-acl", "--provision"); code != 1 || !strings.Contains(errOut, "reapply-acl") {
		t.Errorf("up --reapply-acl --provision: %d %s", code, errOut)
	}

	// reset-state of a deployment whose action runs: asks first; with
	// --no-ask cancels the action and brings the deployment down.
	_, upDone := e.run("-p", "lab", "up")
	e.waitStarted(t)
	if code, _, errOut := runNow("deployment", "reset-state", "lab"); code != 1 || !strings.Contains(errOut, "--no-ask") {
		t.Errorf("reset-state without an answer: %d %s", code, errOut)
	}
	if code, out, errOut := runNow("--no-ask", "deployment", "reset-state", "lab"); code != 0 {
		t.Errorf("reset-state --no-ask: %d\n%s%s", code, out, errOut)
	}
	upDone()
	d, err := e.c.Deployment(context.Background(), "lab")
	if err != nil || !d.State.Is(api.StateDown) {
		t.Errorf("after reset-state: %+v %v, want down", d.State, err)
	}
	if code, out, _ := runNow("deployment", "reset-state", "lab"); code != 0 || !strings.Contains(out, "already down") {
		t.Errorf("reset-state of a down deployment: %d %s", code, out)
	}
}

// TestSnapshotOriginalFlags: snapshot takes the original's --name,
// --snapshot and --all besides our positional arguments.
func TestSnapshotOriginalFlags(t *testing.T) {
	for _, tc := range []struct {
		sub        string
		f          snapshotFlags
		args       []string
		guest, snp string
		err        string
	}{
		{"create", snapshotFlags{}, []string{"vm", "s1"}, "vm", "s1", ""},
		{"create", snapshotFlags{guest: "vm", snapshot: "s1"}, nil, "vm", "s1", ""},
		{"create", snapshotFlags{all: true}, []string{"s1"}, "", "s1", ""},
		{"create", snapshotFlags{all: true, guest: "vm"}, nil, "", "", "give no guest"},
		{"restore", snapshotFlags{guest: "vm"}, nil, "", "", "name the snapshot"},
		{"restore", snapshotFlags{all: true}, nil, "", "", ""},
		{"delete", snapshotFlags{all: true, guest: "vm"}, nil, "vm", "", ""},
		{"delete", snapshotFlags{all: true, snapshot: "s1"}, nil, "", "", "give no snapshot name"},
		{"delete", snapshotFlags{guest: "vm"}, []string{"other"}, "", "", "not both"},
		{"create", snapshotFlags{}, nil, "", "", "or give --all"},
	} {
		g, s, err := tc.f.target(tc.args, tc.sub)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %+v %v: err %v, want %q", tc.sub, tc.f, tc.args, err, tc.err)
		case tc.err == "" && (err != nil || g != tc.guest || s != tc.snp):
			t.Errorf("%s %+v %v: %q %q %v, want %q %q", tc.sub, tc.f, tc.args, g, s, err, tc.guest, tc.snp)
		}
	}
}
