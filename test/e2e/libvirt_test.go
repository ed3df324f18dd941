package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
	"github.com/testbedos/testbedos/test/guestimage"
)

// Two VMs of the test image (direct kernel boot, under TCG on hosts where
// KVM does not run guests) and a namespace on one switch.
const mixedLab = `machines:
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.11}]
    libvirt:
      cpus: 1
      memory_mb: 128
      setup_script: vm-setup.sh
      libvirt_type:
        kernel: {kernel: vmlinux, initrd: initrd.gz}
  - name: vm2
    network: [{switch: sw0, ip: 10.0.0.12}]
    libvirt:
      cpus: 1
      memory_mb: 128
      setup_script: vm-setup.sh
      libvirt_type:
        kernel: {kernel: vmlinux, initrd: initrd.gz}
  - name: ns1
    network: [{switch: sw0, ip: 10.0.0.13}]
    netns:
      setup_script: ns-setup.sh
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// vmProject writes a project that QEMU's unprivileged user can read, with
// the test image's kernel and initrd in it.
func vmProject(t *testing.T, yaml string, files map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := guestimage.Cached(ctx, guestimage.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("test guest image: %v", err)
	}
	dir := project(t, yaml, files)
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for from, to := range map[string]string{img.BootKernel(): "vmlinux", img.Initrd: "initrd.gz"} {
		to = filepath.Join(dir, to)
		if os.Link(from, to) == nil {
			continue
		}
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// vmDeployment is deployment plus the clean-up of what libvirt may keep.
func vmDeployment(t *testing.T, s *server, prefix, dir string) string {
	name := deployment(t, s, prefix, dir)
	t.Cleanup(func() {
		if err := libvirttest.RemoveAll(name); err != nil {
			t.Errorf("libvirt clean-up: %v", err)
		}
	})
	return name
}

// TestLibvirtMixedTopology is issue 4's acceptance: up; every guest pings
// every other (from inside the VMs over SSH, from the namespace directly);
// the setup scripts' output is in the log; a snapshot restore undoes a
// change; down leaves no domain, disk or tap.
func TestLibvirtMixedTopology(t *testing.T) {
	libvirttest.Require(t)
	start := time.Now()
	s := startServer(t)
	dir := vmProject(t, mixedLab, map[string]string{
		"vm-setup.sh": "#!/bin/sh\necho \"hello from $(hostname) of $TESTBEDOS_DEPLOYMENT\"\nip -o -4 addr show dev eth0 | cut -d' ' -f2,7\n",
		"ns-setup.sh": "#!/bin/sh\necho namespace $TESTBEDOS_GUEST ready\n",
	})
	name := vmDeployment(t, s, "lvm", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)
	for _, f := range []string{"ssh/id_ed25519", "libvirt/vm1/domain.xml", "libvirt/vm2/domain.xml"} {
		if _, err := os.Stat(filepath.Join(dir, "artefacts", f)); err != nil {
			t.Fatalf("artefact: %v", err)
		}
	}

	upStart := time.Now()
	log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	t.Logf("up of 2 VMs and a namespace: %.1f s", time.Since(upStart).Seconds())
	if testing.Verbose() {
		t.Logf("up log:\n%s", log)
	}
	for _, want := range []string{
		"[vm1] hello from vm1 of " + name, "[vm2] hello from vm2 of " + name,
		"[vm1] eth0 10.0.0.11/24", "[ns1] namespace ns1 ready",
		"virtual machines run under", "ready after", "==> up [6/6] end",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("up log lacks %q:\n%s", want, log)
		}
	}

	ip := map[string]string{}
	for _, g := range st.Guests {
		a, _, _ := net.ParseCIDR(g.Interfaces[0].Address)
		ip[g.Name] = a.String()
	}
	for _, to := range []string{"vm1", "vm2"} {
		if err := nettest.Ping(netnsPrefix(name)+"ns1", net.ParseIP(ip[to]), 10*time.Second); err != nil {
			t.Errorf("ns1 -> %s: %v", to, err)
		}
	}
	ssh := newGuestShell(t, &st)
	for _, from := range []string{"vm1", "vm2"} {
		for _, to := range []string{"vm1", "vm2", "ns1"} {
			if from != to {
				ssh.run(from, "ping -c 1 -W 5 "+ip[to])
			}
		}
	}

	// Snapshots through the CLI: take one, change memory (the RAM root)
	// and disk, restore, and the change is gone.
	kc := func(want int, args ...string) string {
		t.Helper()
		code, out := kvmCompose(t, s, dir, append([]string{"--project-name", name, "snapshot"}, args...)...)
		if code != want {
			t.Fatalf("kvm-compose snapshot %v: exit %d, want %d\n%s", args, code, want, out)
		}
		return out
	}
	ssh.run("vm1", "echo original > /root/marker && printf original | dd of=/dev/vda conv=fsync 2>/dev/null")
	if out := kc(0, "create", "vm1", "before"); !strings.Contains(out, "snapshot before taken") || !strings.Contains(out, "memory and disks vda") {
		t.Fatalf("snapshot create:\n%s", out)
	}
	ssh.run("vm1", "echo changed > /root/marker && printf changed! | dd of=/dev/vda conv=fsync 2>/dev/null")
	if got := ssh.run("vm1", "cat /root/marker; dd if=/dev/vda bs=8 count=1 2>/dev/null"); got != "changed\nchanged!" {
		t.Fatalf("after the change: %q", got)
	}
	if out := kc(0, "restore", "vm1", "before"); !strings.Contains(out, "restored snapshot before") {
		t.Fatalf("snapshot restore:\n%s", out)
	}
	if got := ssh.run("vm1", "cat /root/marker; dd if=/dev/vda bs=8 count=1 2>/dev/null"); got != "original\noriginal" {
		t.Fatalf("after restore: %q, want the snapshot's memory and disk", got)
	}
	if out := kc(0, "list", "vm1"); !strings.Contains(out, "guest vm1: 1 snapshot") || !strings.Contains(out, "before: taken") {
		t.Errorf("snapshot list:\n%s", out)
	}
	if out := kc(0, "info", "vm1", "before"); !strings.Contains(out, "memory:   yes") {
		t.Errorf("snapshot info:\n%s", out)
	}
	if out := kc(1, "info", "vm1", "nope"); !strings.Contains(out, "no such snapshot nope (it has before)") {
		t.Errorf("info of an unknown snapshot:\n%s", out)
	}
	if out := kc(1, "create", "ns1", "x"); !strings.Contains(out, "guest ns1 of kind netns has no snapshots") {
		t.Errorf("snapshot of a namespace:\n%s", out)
	}
	// The same reads through the GET routes.
	ctx := context.Background()
	if list, err := s.c.Snapshots(ctx, name, "vm1"); err != nil || len(list) != 1 || list[0].Name != "before" || !list[0].Memory || !list[0].Current {
		t.Errorf("GET snapshots of vm1: %+v, %v", list, err)
	}
	if snap, err := s.c.Snapshot(ctx, name, "vm1", "before"); err != nil || snap.State != "running" || len(snap.Disks) != 1 || snap.Created.IsZero() {
		t.Errorf("GET snapshot before of vm1: %+v, %v", snap, err)
	}
	if _, err := s.c.Snapshot(ctx, name, "vm1", "nope"); client.StatusOf(err) != 404 || !strings.Contains(err.Error(), "it has before") {
		t.Errorf("GET an unknown snapshot: %v, want 404 naming the snapshots there are", err)
	}
	if _, err := s.c.Snapshots(ctx, name, "ns1"); client.StatusOf(err) != 422 {
		t.Errorf("GET snapshots of a namespace: %v, want 422", err)
	}
	// Reads and refused actions left the deployment up.
	if d, _ := s.c.Deployment(ctx, name); !d.State.Is(api.StateUp) {
		t.Errorf("after reading snapshots the deployment is %v, want up", d.State)
	}
	kc(0, "delete", "vm1", "before")
	if out := kc(0, "list", "vm1"); !strings.Contains(out, "guest vm1: 0 snapshots") {
		t.Errorf("list after delete:\n%s", out)
	}

	checkSerialConsole(t, s, name, "vm1")

	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNoVMsLeft(t, name, dir, st)
	mustSucceed(t, s, name, cmd(api.CmdDown))
	d, _ := s.c.Deployment(context.Background(), name)
	if !d.State.Is(api.StateDown) {
		t.Fatalf("state after down = %v", d.State)
	}
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}

// assertNoVMsLeft: no domain, pool, disk clone, tap, bridge or namespace.
func assertNoVMsLeft(t *testing.T, name, dir string, st topology.State) {
	t.Helper()
	domains, pools, err := libvirttest.Leftovers(name)
	if err != nil || len(domains)+len(pools) > 0 {
		t.Errorf("left in libvirt: domains %v, pools %v (%v)", domains, pools, err)
	}
	disks, _ := filepath.Glob(filepath.Join(dir, "artefacts", "libvirt", "disks", "*"))
	if len(disks) > 0 {
		t.Errorf("disk clones left: %v", disks)
	}
	var taps []string
	for _, g := range st.Guests {
		taps = append(taps, g.Interfaces[0].HostName)
	}
	if left := libvirttest.WaitNoLinks(taps, 5*time.Second); len(left) > 0 {
		t.Errorf("taps left: %v", left)
	}
	assertNothingLeft(t, st)
}

// guestShell runs commands in VMs over SSH as the server does.
type guestShell struct {
	t   *testing.T
	st  *topology.State
	drv *libvirt.Driver
}

func newGuestShell(t *testing.T, st *topology.State) *guestShell {
	return &guestShell{t: t, st: st, drv: libvirt.New(libvirt.Options{})}
}

func (g *guestShell) run(guestName, command string) string {
	g.t.Helper()
	var target *topology.Guest
	for i := range g.st.Guests {
		if g.st.Guests[i].Name == guestName {
			target = &g.st.Guests[i]
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := g.drv.Dial(ctx, guest.LocalDeployment(g.st), target)
	if err != nil {
		g.t.Fatalf("ssh %s: %v", guestName, err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		g.t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(command)
	if err != nil {
		g.t.Fatalf("%s: %s: %v\n%s", guestName, command, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestLibvirtBadInput: what generate-artefacts refuses with 422 naming the
// field, before anything is recorded.
func TestLibvirtBadInput(t *testing.T) {
	s := startServer(t)
	vm := func(libvirtType, memory string) string {
		return `machines:
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.11}]
    libvirt:
      cpus: 1
      memory_mb: ` + memory + `
      libvirt_type:
        ` + libvirtType + `
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"missing kernel", vm("kernel: {kernel: no-such-vmlinux}", "64"), "kvm-compose.yaml:8: machines[0].libvirt.libvirt_type.kernel.kernel no-such-vmlinux does not exist in the project folder"},
		{"missing disk", vm("existing_disk: {path: disk.qcow2, driver_type: qcow2}", "64"), "machines[0].libvirt.libvirt_type.existing_disk.path disk.qcow2 does not exist"},
		{"missing iso", vm("iso_guest: {path: installer.iso}", "64"), "machines[0].libvirt.libvirt_type.iso_guest.path installer.iso does not exist"},
		{"unknown disk kind", vm("floppy: {path: a.img}", "64"), "machines[0].libvirt.libvirt_type.floppy is not a known field (known: cloud_image, existing_disk, iso_guest, kernel)"},
		{"bad disk format", vm("existing_disk: {path: vmlinuz, driver_type: vmdk}", "64"), `machines[0].libvirt.libvirt_type.existing_disk.driver_type "vmdk" is not raw or qcow2`},
		{"memory 0", vm("kernel: {kernel: vmlinuz}", "0"), "kvm-compose.yaml:6: machines[0].libvirt.memory_mb 0 is below the minimum of 16 MiB"},
		{"cloud image URL", vm("cloud_image: {url: ftp://x/y.img}", "64"), `machines[0].libvirt.libvirt_type.cloud_image.url "ftp://x/y.img" is not an http or https URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, tc.yaml, map[string]string{"vmlinuz": "not really a kernel"})
			name := deployment(t, s, "lvbad", dir)
			_, err := s.c.Action(context.Background(), name, cmd(api.CmdGenerateArtefacts))
			if client.StatusOf(err) != 422 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("generate-artefacts: %v\nwant 422 saying %q", err, tc.want)
			}
			if d, _ := s.c.Deployment(context.Background(), name); d.LastActionUUID != nil {
				t.Fatalf("a refused action was recorded: %+v", d)
			}
		})
	}
}

// TestLibvirtdUnreachable: up with libvirtd not answering (the server is
// pointed at a socket nobody listens on) fails with a clear message, the
// state says failed, and nothing is left.
func TestLibvirtdUnreachable(t *testing.T) {
	nettest.RequireRoot(t)
	sock := filepath.Join(t.TempDir(), "libvirt-sock")
	s := startServer(t, "TESTBEDOS_LIBVIRT_SOCKET="+sock)
	dir := project(t, `machines:
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.11}]
    libvirt:
      cpus: 1
      memory_mb: 64
      libvirt_type: {kernel: {kernel: vmlinuz}}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`, map[string]string{"vmlinuz": "never booted"})
	name := deployment(t, s, "lvnone", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	o, lines, id := act(t, s, name, cmd(api.CmdUp))
	if o.ErrorCode == 0 {
		t.Fatalf("up without libvirtd succeeded:\n%s", strings.Join(lines, "\n"))
	}
	want := "cannot reach libvirtd at " + sock + ": "
	e, err := s.c.LogEntry(context.Background(), id)
	if err != nil || !strings.Contains(e.Error, want) || !strings.Contains(strings.Join(lines, "\n"), want) {
		t.Errorf("the failure does not say %q: entry %+v (%v)\n%s", want, e, err, strings.Join(lines, "\n"))
	}
	t.Logf("up without libvirtd: %s", e.Error)
	d, _ := s.c.Deployment(context.Background(), name)
	if !d.State.Is(api.StateFailed) || d.State.Failed == nil || d.State.Failed.Name != api.CmdUp {
		t.Errorf("state = %v, want failed up", d.State)
	}
	assertNothingLeft(t, state(t, s, name))
}
