package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

const managedLab = `machines:
  - name: ns1
    network: [{switch: sw0, ip: 10.0.0.1}]
  - name: ns2
    network: [{switch: sw0, ip: 10.0.0.2}]
  - name: box
    network: [{switch: sw0, ip: 10.0.0.3}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
testbed_options:
  management: {subnet: 172.31.77.0/24}
`

// TestManagementNetwork: every guest has mgmt0; the host resolves
// <guest>.<deployment>.tbos from /etc/hosts and reaches the guests there;
// a netns guest resolves and pings another by name, the container has the
// names in its /etc/hosts; down removes the names.
func TestManagementNetwork(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := containerLab(t, s, "mg", managedLab, nil, "box")
	name, st := lab.name, lab.st
	log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(log, "names: 3 names in /etc/hosts") {
		t.Errorf("up log:\n%s", log)
	}
	exec1 := func(g string, argv ...string) api.ExecResult {
		t.Helper()
		r, err := s.c.Exec(context.Background(), name, g, api.ExecRequest{Command: argv, TimeoutS: 20})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, g := range []string{"ns1", "ns2", "box"} {
		if r := exec1(g, "ip", "-o", "-4", "addr", "show", "dev", "mgmt0"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "172.31.77.") {
			t.Errorf("%s mgmt0: %+v", g, r)
		}
		host := topology.ManagementName(name, g)
		out, err := exec.Command("getent", "hosts", host).Output()
		if err != nil || !strings.Contains(string(out), "172.31.77.") {
			t.Errorf("host resolves %s: %q %v", host, out, err)
			continue
		}
		ip := net.ParseIP(strings.Fields(string(out))[0])
		if err := pingFromHost(ip); err != nil {
			t.Errorf("host -> %s: %v", host, err)
		}
	}
	if r := exec1("ns1", "ping", "-c", "1", "-W", "5", topology.ManagementName(name, "ns2")); r.ExitCode != 0 {
		t.Errorf("ns1 pings ns2 by name: %+v", r)
	}
	if r := exec1("box", "cat", "/etc/hosts"); !strings.Contains(r.Stdout, topology.ManagementName(name, "ns1")) {
		t.Errorf("the container's /etc/hosts:\n%s", r.Stdout)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
	data, _ := os.ReadFile("/etc/hosts")
	if strings.Contains(string(data), name) {
		t.Errorf("/etc/hosts after down:\n%s", data)
	}
	assertNothingLeft(t, st)
}

// pingFromHost pings from the host's own namespace.
func pingFromHost(ip net.IP) error {
	return exec.Command("ping", "-c", "1", "-W", "5", ip.String()).Run()
}
