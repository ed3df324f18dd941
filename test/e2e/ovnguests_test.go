package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
)

// ovnGuestsLab has a guest of every kind on one switch.
const ovnGuestsLab = `machines:
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.11}]
    libvirt:
      cpus: 1
      memory_mb: 128
      libvirt_type:
        kernel: {kernel: vmlinux, initrd: initrd.gz}
  - name: box
    network: [{switch: sw0, ip: 10.0.0.12}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
  - name: ns1
    network: [{switch: sw0, ip: 10.0.0.13}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestOVNGuestKinds: on the ovn backend a VM, a container and a namespace
// on one logical switch reach each other (the server reaches the VM over
// SSH through the host's port on the switch), and down leaves no domain,
// container, link or OVN object.
func TestOVNGuestKinds(t *testing.T) {
	libvirttest.Require(t)
	if _, err := exec.LookPath("ovn-controller"); err != nil {
		testenv.Missing(t, "Open vSwitch and OVN are not installed (openvswitch-switch ovn-central ovn-host)")
	}
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	start := time.Now()
	s := startServer(t, "TESTBEDOS_NETWORK=ovn")
	dir := vmProject(t, strings.ReplaceAll(ovnGuestsLab, "IMAGE", image), nil)
	name := vmDeployment(t, s, "ovng", dir)
	t.Cleanup(func() { removeContainers(cli, name, "box") })
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)
	log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	if !strings.Contains(log, "guest vm1: ready after") {
		t.Errorf("up log lacks the VM reached over SSH:\n%s", log)
	}
	ns1 := netnsPrefix(name) + "ns1"
	for _, to := range []string{"10.0.0.11", "10.0.0.12"} {
		if err := nettest.Ping(ns1, net.ParseIP(to), 10*time.Second); err != nil {
			t.Errorf("ns1 → %s: %v", to, err)
		}
	}
	newGuestShell(t, &st).run("vm1", "ping -c 1 -W 5 10.0.0.12")

	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNoVMsLeft(t, name, dir, st)
	assertNoOVNLeft(t, s, st.Prefix)
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}

// A server killed without a chance to stop takes the OVS/OVN daemons it
// ran along (they get SIGTERM when it dies).
func TestOVNDaemonsDieWithServer(t *testing.T) {
	nettest.RequireRoot(t)
	if _, err := exec.LookPath("ovn-controller"); err != nil {
		testenv.Missing(t, "Open vSwitch and OVN are not installed (openvswitch-switch ovn-central ovn-host)")
	}
	s := startServer(t, "TESTBEDOS_NETWORK=ovn")
	pidfiles, _ := filepath.Glob(filepath.Join(s.dataDir, "ovn", "*.pid"))
	var pids []int
	for _, f := range pidfiles {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 6 {
		t.Fatalf("pidfiles %v, want 6 daemons", pidfiles)
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("daemon %d still runs after its server was killed", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
