package e2e

import (
	"context"
	"fmt"
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
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// A kernel-boot VM on client c1, a namespace on the main and one on c2, on
// one switch spanning the three hosts.
const clientVMLabYAML = `machines:
  - name: vm1
    host: c1
    network: [{switch: sw0, ip: 10.71.0.20}]
    libvirt:
      cpus: 1
      memory_mb: 128
      libvirt_type:
        kernel: {kernel: vmlinux, initrd: initrd.gz}
  - name: ns1
    host: %s
    network: [{switch: sw0, ip: 10.71.0.11}]
    netns: {}
  - name: ns2
    host: c2
    network: [{switch: sw0, ip: 10.71.0.12}]
    netns: {}
network:
  switches:
    sw0: {subnet: 10.71.0.0/24}
`

// clientVMLab is a main and two clients, each in its own network namespace;
// c1 runs a libvirtd of its own in its namespace (a host's QEMU taps must
// be in the host's namespace), with its own run, state and config folders.
type clientVMLab struct {
	main    *server
	clients map[string]*server
	ns      map[string]string // client → its namespace
	virsh   string            // URI of c1's libvirtd
	name    string
	st      topology.State
}

// TestLibvirtGuestOnClient is issue 18's 3-host acceptance for libvirt
// guests on clients: the VM's kernel, initrd and artefacts are pushed to
// c1, whose libvirtd runs it; namespaces on the main and on c2 ping it over
// the VXLAN tunnels; a snapshot of it is made and restored through the
// agent; down leaves no domain, disk, bridge or link on any host; a second
// up sends no file again. On the running VM: exec with stdin, the serial
// console, a capture of its link and impairments of it, all through the
// agent.
func TestLibvirtGuestOnClient(t *testing.T) {
	libvirttest.Require(t)
	begin := time.Now()
	lab := newClientVMLab(t)
	log := strings.Join(mustSucceed(t, lab.main, lab.name, cmd(api.CmdUp)), "\n")
	for _, f := range []string{"vmlinux", "initrd.gz"} {
		if !strings.Contains(log, "file "+f+" to host c1: sending") || !strings.Contains(log, "file "+f+" to host c1: ") {
			t.Errorf("the log does not tell %s was pushed to c1:\n%s", f, log)
		}
	}
	if !strings.Contains(log, "verified by sha256") || !strings.Contains(log, "MB/s") {
		t.Errorf("the log has no transfer summary:\n%s", log)
	}
	vm := lab.guest(t, "vm1")
	vmIP, _, _ := net.ParseCIDR(vm.Interfaces[0].Address)
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ping from the main", func(t *testing.T) {
			if err := nettest.Ping(lab.guest(t, "ns1").Netns.Namespace, vmIP, 30*time.Second); err != nil {
				t.Error(err)
			}
		}},
		{"ping from c2", func(t *testing.T) {
			if err := pingFromClient(lab.clients["c2"], lab.guest(t, "ns2").Netns.Namespace, vmIP); err != nil {
				t.Error(err)
			}
		}},
		{"exec", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := lab.main.c.Exec(ctx, lab.name, "vm1", api.ExecRequest{Command: []string{"sh", "-c", "cat; echo vm-$((6*7))"}, Stdin: []byte("typed\n")})
			if err != nil || res.ExitCode != 0 || res.Stdout != "typed\nvm-42\n" {
				t.Errorf("exec in the VM on c1: %+v, %v", res, err)
			}
		}},
		{"console", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			con, err := lab.main.c.OpenConsole(ctx, lab.name, "vm1")
			if err != nil {
				t.Fatal(err)
			}
			defer con.Close()
			if _, err := con.Write([]byte("\necho serial-$((6*7))\n")); err != nil {
				t.Fatal(err)
			}
			readUntil(t, con, "serial-42")
		}},
		{"capture", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stream, err := lab.main.c.Capture(ctx, lab.name, "vm1", "eth0", "icmp")
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			pings := make(chan error, 1)
			go func() { _, err := pingFrom(lab.main, lab.name, "ns1", vmIP.String()); pings <- err }()
			readICMP(t, stream, "10.71.0.11", vmIP.String(), 3)
			if err := <-pings; err != nil {
				t.Error(err)
			}
		}},
		{"impairments", func(t *testing.T) {
			// A rate limit (a tbf qdisc on the VM's tap) works on every
			// kernel; delays need netem, which a VM's tap cannot fall back
			// from. An 8,000-byte ping is more than the 4.5 kB burst: at 64 kbit/s (8 kB/s) the rest takes over 400 ms.
			ctx := context.Background()
			if _, err := lab.main.c.SetImpairment(ctx, lab.name, "vm1", "eth0", api.Impairment{Up: true, RateKbit: 64}); err != nil {
				t.Fatal(err)
			}
			rtt, err := pingFrom(lab.main, lab.name, "ns1", vmIP.String(), "-s", "8000", "-W", "5")
			if t.Logf("rtt of 8000-byte pings at 64 kbit/s on the VM's link: %v", rtt); err != nil || rtt < 300*time.Millisecond {
				t.Errorf("rtt at 64 kbit/s on the VM's link: %v (%v), want over 300 ms", rtt, err)
			}
			if _, err := lab.main.c.SetImpairment(ctx, lab.name, "vm1", "eth0", api.Impairment{Up: false}); err != nil {
				t.Fatal(err)
			}
			if rtt, err := pingFrom(lab.main, lab.name, "ns1", vmIP.String()); err == nil {
				t.Errorf("pings over the VM's link set down: %v", rtt)
			}
			if _, err := lab.main.c.SetImpairment(ctx, lab.name, "vm1", "eth0", api.Impairment{Up: true}); err != nil {
				t.Fatal(err)
			}
			if rtt, err := pingFrom(lab.main, lab.name, "ns1", vmIP.String(), "-s", "8000"); err != nil || rtt >= 300*time.Millisecond {
				t.Errorf("with the link up again and no limit: %v (%v)", rtt, err)
			}
		}},
		{"snapshot and restore", func(t *testing.T) {
			for _, sub := range []string{"create", "restore"} {
				mustSucceed(t, lab.main, lab.name, api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot,
					Snapshot: api.SnapshotOptions{SubCommand: sub, Guest: "vm1", Name: "s1"}}})
			}
			if err := nettest.Ping(lab.guest(t, "ns1").Netns.Namespace, vmIP, 30*time.Second); err != nil {
				t.Errorf("after the restore: %v", err)
			}
			mustSucceed(t, lab.main, lab.name, api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot,
				Snapshot: api.SnapshotOptions{SubCommand: "delete", Guest: "vm1", Name: "s1"}}})
		}},
	}
	for _, s := range steps {
		t.Run(s.name, s.run)
	}
	mustSucceed(t, lab.main, lab.name, cmd(api.CmdDown))
	lab.assertNothingLeft(t)

	again := strings.Join(mustSucceed(t, lab.main, lab.name, cmd(api.CmdUp)), "\n")
	if strings.Contains(again, ": sending") || !strings.Contains(again, "file vmlinux: already on host c1") {
		t.Errorf("the second up sent files again:\n%s", again)
	}
	mustSucceed(t, lab.main, lab.name, cmd(api.CmdDown))
	lab.assertNothingLeft(t)
	t.Logf("3-host lab with a VM on a client: %.1f s", time.Since(begin).Seconds())
}

func newClientVMLab(t *testing.T) *clientVMLab {
	n := newTestNet(t)
	lab := &clientVMLab{clients: map[string]*server{}, ns: map[string]string{}}
	lab.main = startServer(t, "TESTBEDOS_LISTEN="+n.mainIP()+":3355", "TESTBEDOS_HEARTBEAT_INTERVAL="+heartbeat.String())
	token := joinToken(t, lab.main)
	ev := events(t, lab.main.c)
	for i, name := range []string{"c1", "c2"} {
		ns, ip := n.addClient(t, i+1)
		lab.ns[name] = ns
		var wrap []string
		if name == "c1" {
			wrap, lab.virsh = ownLibvirtd(t)
		}
		c := clientServer(t, ns, name, ip, "client", "--join", token)
		searchable(t, filepath.Dir(c.dataDir))
		c.wrap = wrap
		if name == "c1" {
			sock := strings.TrimPrefix(lab.virsh, "qemu:///system?socket=")
			c.env = append(c.env, "TESTBEDOS_LIBVIRT_SOCKET="+sock, "TESTBEDOS_LIBVIRT_DOMAIN_TYPE=qemu")
		}
		c.start(t)
		lab.clients[name] = c
		waitEvent(t, ev, api.EventMemberJoined, name, 20*time.Second)
	}
	cc, err := lab.main.c.ClusterConfig(t.Context())
	if err != nil || len(cc.Hosts) == 0 {
		t.Fatalf("cluster config: %+v, %v", cc, err)
	}
	mainName := cc.Hosts[0].Name
	for _, h := range cc.Hosts {
		if h.IsMainHost {
			mainName = h.Name
		}
	}
	dir := vmProject(t, fmt.Sprintf(clientVMLabYAML, mainName), nil)
	lab.name = vmDeployment(t, lab.main, "cvm", dir)
	t.Cleanup(func() {
		lab.removeDomains()
		for _, ns := range lab.ns {
			leftoversIn(t, ns, lab.st.Prefix, false)
		}
	})
	mustSucceed(t, lab.main, lab.name, cmd(api.CmdGenerateArtefacts))
	lab.st = state(t, lab.main, lab.name)
	return lab
}

func (lab *clientVMLab) guest(t *testing.T, name string) topology.Guest {
	for _, g := range lab.st.Guests {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no guest %s in the state", name)
	return topology.Guest{}
}

// searchable lets QEMU's unprivileged user enter dir and the folders above
// it (t.TempDir makes them 0700).
func searchable(t *testing.T, dir string) {
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// ownLibvirtd returns the command line a client server runs under so that
// it shares a mount namespace with a libvirtd and virtlogd of its own
// (started there first, with private run, state, cache, log and domain
// config folders; its socket in a folder of the test), and that
// libvirtd's URI. The daemons are stopped when the test ends.
func ownLibvirtd(t *testing.T) (wrap []string, uri string) {
	dir := t.TempDir()
	conf, err := os.ReadFile("/etc/libvirt/libvirtd.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf = append(conf, []byte(fmt.Sprintf("\nunix_sock_dir = %q\n", dir))...)
	if err := os.WriteFile(filepath.Join(dir, "libvirtd.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -e
for m in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt/qemu; do
	mkdir -p "$m"
	mount -t tmpfs tbos-test "$m"
done
virtlogd -d -p "$D/virtlogd.pid"
libvirtd -d -p "$D/libvirtd.pid" -f "$D/libvirtd.conf"
i=0
while [ ! -S "$D/libvirt-sock" ]; do
	i=$((i+1))
	if [ "$i" -gt 300 ]; then echo "libvirtd did not start" >&2; exit 1; fi
	sleep 0.1
done
exec "$@"
`
	script = strings.ReplaceAll(script, "$D", dir)
	uri = "qemu:///system?socket=" + filepath.Join(dir, "libvirt-sock")
	t.Cleanup(func() {
		for _, d := range []string{"libvirtd", "virtlogd"} {
			data, err := os.ReadFile(filepath.Join(dir, d+".pid"))
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	})
	return []string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh"}, uri
}

// virshOn runs virsh against c1's libvirtd.
func (lab *clientVMLab) virshOn(args ...string) (string, error) {
	out, err := exec.Command("virsh", append([]string{"-c", lab.virsh}, args...)...).CombinedOutput()
	return string(out), err
}

// removeDomains destroys what the deployment left in c1's libvirtd (a
// failed test).
func (lab *clientVMLab) removeDomains() {
	if lab.name == "" {
		return
	}
	out, _ := lab.virshOn("list", "--all", "--name")
	for _, d := range strings.Fields(out) {
		if strings.HasPrefix(d, "tbos."+lab.name+".") {
			lab.virshOn("destroy", d)
			lab.virshOn("undefine", d, "--snapshots-metadata")
		}
	}
	lab.virshOn("pool-destroy", "tbos."+lab.name)
}

// assertNothingLeft checks every host: no domain or pool in c1's libvirtd,
// no disk folder in c1's data folder, no bridge, tunnel or tap of the
// deployment in any host's namespace, no namespace on the main.
func (lab *clientVMLab) assertNothingLeft(t *testing.T) {
	t.Helper()
	assertNothingLeft(t, lab.st)
	for host, ns := range lab.ns {
		if left := leftoversIn(t, ns, lab.st.Prefix, true); len(left) > 0 {
			t.Errorf("left on %s: %v", host, left)
		}
	}
	doms, err := lab.virshOn("list", "--all", "--name")
	pools, perr := lab.virshOn("pool-list", "--all", "--name")
	if err != nil || perr != nil || strings.Contains(doms+pools, "tbos."+lab.name) {
		t.Errorf("left in c1's libvirtd (%v, %v): domains %q, pools %q", err, perr, doms, pools)
	}
	if _, err := os.Stat(filepath.Join(lab.clients["c1"].dataDir, "disks", lab.name)); err == nil {
		t.Errorf("c1 keeps the deployment's disk folder")
	}
}
