package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/test/cloudimage"
)

// cloudLab: four Debian 12 cloud-image VMs (vm2 by DHCP from r1) and a
// namespace on one switch; vm1 has the original's user, password, console
// port, run script, environment and context. IMAGE and SUM are the test
// server's image URL and its sha256, TTYPORT a free loopback port.
const cloudLab = `machines:
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.11, gateway: 10.0.0.1}]
    libvirt:
      cpus: 1
      memory_mb: 384
      setup_script: vm-setup.sh
      username: alice
      password: "pw of alice"
      tcp_tty_port: TTYPORT
      libvirt_type:
        cloud_image:
          url: "IMAGE"
          sha256: SUM
          expand_gigabytes: 2
          run_script: vm-run.sh
          environment: {ROLE: "web server"}
          context: ctx
  - name: vm2
    network: [{switch: sw0, ip: dynamic}]
    libvirt:
      cpus: 1
      memory_mb: 384
      setup_script: vm-setup.sh
      libvirt_type:
        cloud_image: {url: "IMAGE"}
  - name: vm3
    network: [{switch: sw0, ip: 10.0.0.13}]
    libvirt:
      cpus: 1
      memory_mb: 384
      libvirt_type:
        cloud_image: {url: "IMAGE"}
  - name: vm4
    network: [{switch: sw0, ip: 10.0.0.14}]
    libvirt:
      cpus: 1
      memory_mb: 384
      libvirt_type:
        cloud_image: {url: "IMAGE"}
  - name: ns1
    network: [{switch: sw0, ip: 10.0.0.20}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
  routers:
    r1:
      ports:
        - {name: r1-sw0, switch: sw0, gateway_ip: 10.0.0.1/24}
      dhcp: [{switch: sw0, exclude_ips: {from: 10.0.0.1, to: 10.0.0.99}}]
testbed_options:
  ready_timeout: 900
`

// TestCloudImageLab is issue 18's acceptance on one host: a real Debian 12
// cloud image (cloud-init, OpenSSH, systemd, extlinux), built from Debian's
// packages and served over loopback HTTP, downloaded once (sha256
// checked) for four VMs booting at once; setup scripts after cloud-init;
// pings between the VMs and the namespace; exec; the grown root; vm2's DHCP
// lease recorded and listed; the console's login prompt; a snapshot
// restored; down leaves nothing and the image is no longer in use.
func TestCloudImageLab(t *testing.T) {
	libvirttest.Require(t)
	if m := cloudimage.Missing(); len(m) > 0 {
		testenv.Skipf(t, "cannot build the cloud image: %v missing (scripts/install-test-deps.sh)", m)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	img, err := cloudimage.Cached(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cloud image %s: %.0f MiB (built now: %v, %s)", img.Path, float64(img.Size)/(1<<20), img.Built, img.Took.Round(time.Second))
	srv, err := cloudimage.Serve(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	s := startServer(t)
	// QEMU's user reads the image cache and disks under the data folder.
	for d := s.dataDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.MkdirAll(d, 0o755)
		os.Chmod(d, 0o755)
	}
	ttyPort := freePort(t)
	yaml := strings.NewReplacer("IMAGE", srv.ImageURL(), "SUM", img.SHA256, "TTYPORT", strconv.Itoa(ttyPort)).Replace(cloudLab)
	dir := vmProject(t, yaml, map[string]string{
		"vm-setup.sh":       "#!/bin/sh\ncloud-init status | tee /root/setup-marker\necho \"setup of $TESTBEDOS_GUEST done\" >> /root/setup-marker\n",
		"vm-run.sh":         "#!/bin/sh\nset -e\ntest -s /root/setup-marker\necho \"run as $ROLE: $(cat /etc/nocloud/context/sub/hello.txt)\" > /root/run-marker\n",
		"ctx/sub/hello.txt": "hello from the context\n",
	})
	name := vmDeployment(t, s, "ci", dir)
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)

	upStart := time.Now()
	// Four VMs under TCG on a shared 2-core machine: up may take longer
	// than the harness's 5 minutes.
	o, lines := actWithin(t, s, name, cmd(api.CmdUp), 30*time.Minute)
	if o.ErrorCode != 0 {
		t.Fatalf("up failed (code %d) after %.1f s:\n%s", o.ErrorCode, time.Since(upStart).Seconds(), strings.Join(lines, "\n"))
	}
	log := strings.Join(lines, "\n")
	t.Logf("up of 4 cloud-image VMs (TCG) and a namespace: %.1f s", time.Since(upStart).Seconds())
	if testing.Verbose() {
		t.Logf("up log:\n%s", log)
	}
	for _, want := range []string{
		"image debian12-cloud: downloaded", "cloud-init status: done",
		"[vm1] status: done", "grown to",
		"guest vm2: eth0 leased 10.0.0.",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("up log lacks %q; its lines on vm2:\n%s", want, linesWith(lines, "vm2"))
		}
	}
	if n := srv.GETs("/" + cloudimage.FileName); n != 1 {
		t.Errorf("the image was downloaded %d times for 4 VMs, want once", n)
	}

	// The checks after up get their own bound: up may take long here.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// vm2's lease is recorded and listed.
	raw, err := s.c.GuestsJSON(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var guests []api.Guest
	if err := json.Unmarshal(raw, &guests); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	ip := map[string]string{}
	for _, g := range guests {
		if len(g.Interfaces) > 0 {
			a, _, _ := net.ParseCIDR(g.Interfaces[0].IP)
			if a != nil {
				ip[g.Name] = a.String()
			}
		}
		if g.Name == "vm2" && (len(g.Interfaces) == 0 || !g.Interfaces[0].Leased || !strings.HasPrefix(g.Interfaces[0].IP, "10.0.0.")) {
			t.Errorf("vm2's lease is not listed: %+v", g.Interfaces)
		}
	}
	if ip["vm2"] == "" {
		t.Fatalf("no address for vm2: %s", raw)
	}

	ssh := newGuestShell(t, &st)
	for _, from := range []string{"vm1", "vm2"} {
		for _, to := range []string{"vm1", "vm2", "ns1"} {
			if from != to {
				ssh.run(from, "ping -c 1 -W 5 "+ip[to])
			}
		}
	}
	for _, to := range []string{"vm1", "vm2", "vm3", "vm4"} {
		if err := nettest.Ping(netnsPrefix(name)+"ns1", net.ParseIP(ip[to]), 10*time.Second); err != nil {
			t.Errorf("ns1 -> %s: %v", to, err)
		}
	}

	// The setup script's marker, through kvm-compose exec.
	code, out := kvmCompose(t, s, dir, "--project-name", name, "exec", "vm1", "--", "cat", "/root/setup-marker")
	if code != 0 || !strings.Contains(out, "status: done") || !strings.Contains(out, "setup of vm1 done") {
		t.Errorf("exec cat marker: %d %q", code, out)
	}
	// The original's fields: run_script after setup with the environment
	// and the context, the password's hash in place, a login prompt on the
	// console port.
	if got := ssh.run("vm1", "cat /root/run-marker"); got != "run as web server: hello from the context" {
		t.Errorf("run_script marker: %q", got)
	}
	if got := ssh.run("vm1", "getent shadow alice | cut -d: -f2 | cut -c1-3; sudo -l -U alice | grep -c NOPASSWD"); got != "$6$\n1" {
		t.Errorf("alice's password hash and sudo: %q", got)
	}
	if strings.Contains(log, "pw of alice") {
		t.Error("the action log holds the password")
	}
	tty, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ttyPort)), 10*time.Second)
	if err != nil {
		t.Fatalf("console port: %v", err)
	}
	tty.Write([]byte("\r\n"))
	readUntil(t, tty, "vm1 login:")
	tty.Close()
	// The root grew by expand_gigabytes (the image's disk is 1.5 GiB).
	if mb, err := strconv.Atoi(ssh.run("vm1", "df -BM --output=size / | tail -n 1 | tr -dc 0-9")); err != nil || mb < 3000 {
		t.Errorf("vm1's root is %d MiB (%v), want more than 3000 after expand_gigabytes 2", mb, err)
	}
	if mb, err := strconv.Atoi(ssh.run("vm3", "df -BM --output=size / | tail -n 1 | tr -dc 0-9")); err != nil || mb > 1600 {
		t.Errorf("vm3's root is %d MiB (%v), want the image's 1.5 GiB", mb, err)
	}

	// The serial console reaches getty's login prompt.
	con, err := s.c.OpenConsole(ctx, name, "vm3")
	if err != nil {
		t.Fatal(err)
	}
	con.Write([]byte("\n"))
	readUntil(t, con, "vm3 login:")
	con.Close()

	// A snapshot of memory and disk, restored.
	kc := func(args ...string) string {
		t.Helper()
		code, out := kvmCompose(t, s, dir, append([]string{"--project-name", name, "snapshot"}, args...)...)
		if code != 0 {
			t.Fatalf("kvm-compose snapshot %v: exit %d\n%s", args, code, out)
		}
		return out
	}
	ssh.run("vm3", "echo original > /root/state && sync")
	kc("create", "vm3", "before")
	ssh.run("vm3", "echo changed > /root/state && sync")
	kc("restore", "vm3", "before")
	if got := ssh.run("vm3", "cat /root/state"); got != "original" {
		t.Errorf("after restore: %q, want original", got)
	}

	// The image is in use; down frees it and leaves nothing.
	if imgs, err := s.c.Images(ctx); err != nil || len(imgs) != 1 || len(imgs[0].UsedBy) != 1 || imgs[0].SHA256 != img.SHA256 {
		t.Errorf("images while up: %+v %v", imgs, err)
	}
	if err := s.c.DeleteImage(ctx, "debian12-cloud"); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("delete of an image in use: %v", err)
	}
	if o, lines := actWithin(t, s, name, cmd(api.CmdDown), 10*time.Minute); o.ErrorCode != 0 {
		t.Fatalf("down failed:\n%s", strings.Join(lines, "\n"))
	}
	assertNoVMsLeft(t, name, dir, st)
	if left, _ := filepath.Glob(filepath.Join(s.dataDir, "disks", name, "*")); len(left) > 0 {
		t.Errorf("disks left: %v", left)
	}
	if imgs, err := s.c.Images(ctx); err != nil || len(imgs) != 1 || len(imgs[0].UsedBy) != 0 {
		t.Errorf("images after down: %+v %v", imgs, err)
	}
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}

// actWithin is act with a longer bound.
func actWithin(t *testing.T, s *server, name string, req api.ActionRequest, d time.Duration) (api.Outcome, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	id, err := s.c.Action(ctx, name, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Command, err)
	}
	var lines []string
	o, err := s.c.Follow(ctx, id, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("follow %s: %v\n%s", req.Command, err, strings.Join(lines, "\n"))
	}
	return o, lines
}

// linesWith is the lines holding s, to explain a missing one.
func linesWith(lines []string, s string) string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// freePort is a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
