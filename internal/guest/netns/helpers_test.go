package netns

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// stateFor turns a benchmark plan into the resolved state the engine would
// hand the driver, so both bring up exactly the same guests.
func stateFor(p benchbase.Plan) *topology.State {
	st := &topology.State{
		Version:    topology.StateVersion,
		Deployment: "test-" + p.Prefix,
		Prefix:     p.Prefix,
		Hosts:      []topology.Host{{Name: "local", Main: true}},
	}
	if len(p.Bridges) == 0 {
		st.Switches = []topology.Switch{{Name: "lan", Subnet: "10.123.0.0/16", Bridge: p.Bridge}}
	}
	for k, br := range p.Bridges {
		st.Switches = append(st.Switches, topology.Switch{Name: fmt.Sprintf("lan%d", k), Subnet: "10.123.0.0/16", Bridge: br})
	}
	for i := range p.N {
		st.Guests = append(st.Guests, topology.Guest{
			Name: fmt.Sprintf("g%d", i),
			Kind: topology.KindNetns,
			Host: "local",
			Interfaces: []topology.Interface{{
				Switch:   st.Switches[i%len(st.Switches)].Name,
				Bridge:   p.BridgeOf(i),
				Name:     benchbase.GuestIface,
				HostName: p.HostVeth(i),
				Address:  p.Address(i),
				MAC:      p.MAC(i),
			}},
			Netns: &topology.NetnsGuest{Namespace: p.Namespace(i)},
		})
	}
	return st
}

// created drops Create's report for callers that want only the error.
func created(_ bool, err error) error { return err }

// cgroupGuest is one netns guest, made, with its cgroup: what the cgroup
// tests start from.
type cgroupGuest struct {
	d   *Driver
	st  *topology.State
	g   *topology.Guest
	dep guest.Deployment
	// dir is the guest's cgroup.
	dir string
	log *guesttest.Log
}

// newCgroupGuest makes the guest (skipped without cgroup2).
func newCgroupGuest(t *testing.T) *cgroupGuest {
	t.Helper()
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 1}
	c := &cgroupGuest{st: stateFor(p), d: New(Options{}), log: &guesttest.Log{}}
	if _, err := c.d.cgroups.mountPoint(); err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	upBridge(t, p)
	upGuests(t, c.d, c.st, c.log)
	c.g = &c.st.Guests[0]
	c.dep = guest.LocalDeployment(c.st)
	dir, err := c.d.cgroups.path(c.dep.Name, c.g.Name)
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	return c
}

// checkInCgroup fails t for each of the processes (what they are) that is
// not in the guest's cgroup.
func (c *cgroupGuest) checkInCgroup(t *testing.T, what string, pids ...int) {
	t.Helper()
	procs, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !containsWord(string(procs), strconv.Itoa(pid)) {
			t.Errorf("%s %d not in %s/cgroup.procs: %q", what, pid, c.dir, procs)
		}
	}
}

// waitStats polls the guest's stats until enough says so, for up to a
// minute (a loaded machine gives a busy loop little CPU), and returns the
// last.
func (c *cgroupGuest) waitStats(t *testing.T, enough func(guest.Stats) bool) guest.Stats {
	t.Helper()
	var s guest.Stats
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var err error
		if s, err = c.d.Stats(context.Background(), c.dep, c.g); err != nil {
			t.Fatal(err)
		}
		if enough(s) {
			break
		}
	}
	return s
}
