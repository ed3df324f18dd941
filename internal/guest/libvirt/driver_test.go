package libvirt_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/topology"
)

const oneVM = `machines:
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.20}]
    libvirt:
      cpus: 1
      memory_mb: 128
      setup_script: setup.sh
      libvirt_type:
        kernel: {kernel: vmlinux, initrd: initrd.gz}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestKernelGuestLifecycle drives one kernel-boot guest of the test image
// through the engine: generate-artefacts, up (disk, domain, SSH), the setup
// script over SSH, snapshots of memory and disk, down, down again.
func TestKernelGuestLifecycle(t *testing.T) {
	libvirttest.Require(t)
	img := testImage(t)
	dir := vmProject(t, img, oneVM, map[string]string{
		"setup.sh": "#!/bin/sh\necho \"setup of $TESTBEDOS_GUEST in $TESTBEDOS_DEPLOYMENT\"\necho to stderr >&2\nhostname\n",
	})
	w := newWorld(t, dir, "lv", libvirt.Options{DomainType: libvirt.TypeQEMU})
	ctx := libvirttest.Context(t)

	if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	st, g := w.guest(t, "vm1")
	art := filepath.Join(dir, "artefacts")
	for _, f := range []string{"ssh/id_ed25519", "libvirt/vm1/domain.xml", "libvirt/vm1/ssh.sh"} {
		if _, err := os.Stat(filepath.Join(art, f)); err != nil {
			t.Errorf("artefact %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(art, "ssh/id_ed25519")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode: %v %v", fi.Mode(), err)
	}

	start := time.Now()
	if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.Text())
	}
	t.Logf("up with one TCG VM reachable over SSH: %.1f s", time.Since(start).Seconds())
	logText := w.log.Text()
	for _, want := range []string{"[vm1] setup of vm1 in " + w.d.Name, "[vm1] to stderr", "[vm1] vm1", "qemu/TCG", "ready after"} {
		if !strings.Contains(logText, want) {
			t.Errorf("log lacks %q:\n%s", want, logText)
		}
	}
	if ok, err := w.drv.Exists(ctx, guest.Deployment{}, g); !ok || err != nil {
		t.Fatalf("Exists after up = %v, %v", ok, err)
	}
	if got := w.sh(t, "vm1", "ip -o -4 addr show dev eth0"); !strings.Contains(got, "10.0.0.20/24") {
		t.Errorf("eth0: %s", got)
	}
	if s, err := w.drv.Stats(ctx, w.dep(), g); err != nil || s.CPUSeconds <= 0 || s.MemoryBytes == 0 {
		t.Errorf("Stats of a running VM = %+v, %v; want CPU and memory > 0", s, err)
	} else {
		t.Logf("stats of the running VM: %.2f CPU s, %d MiB", s.CPUSeconds, s.MemoryBytes>>20)
	}

	// A failing script names the exit status.
	bad := filepath.Join(dir, "bad.sh")
	os.WriteFile(bad, []byte("echo failing\nexit 7\n"), 0o644)
	if err := w.drv.RunScript(ctx, w.dep(), g, bad, w.log); err == nil || !strings.Contains(err.Error(), "exited with code 7") {
		t.Errorf("failing script: %v", err)
	}
	// Cancelling ends a script that would run for long.
	slow := filepath.Join(dir, "slow.sh")
	os.WriteFile(slow, []byte("#!/bin/sh\necho sleeping\nsleep 600\n"), 0o755)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := w.drv.RunScript(cctx, w.dep(), g, slow, w.log)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled script: %v", err)
	}

	testExecConsole(t, w, st, g)
	testSnapshots(t, w, st, g)

	if err := w.e.Down(ctx, w.d, w.log); err != nil {
		t.Fatalf("down: %v", err)
	}
	assertGone(t, w, st)
	if err := w.e.Down(ctx, w.d, w.log); err != nil {
		t.Fatalf("second down: %v", err)
	}
}

// testSnapshots proves a restore: a file in the guest's RAM root and bytes
// on its disk written after the snapshot are gone after restoring it.
func testSnapshots(t *testing.T, w *world, st *topology.State, g *topology.Guest) {
	ctx := libvirttest.Context(t)
	w.sh(t, "vm1", "echo before > /root/marker && printf before-disk | dd of=/dev/vda conv=fsync 2>/dev/null")
	s, err := w.drv.CreateSnapshot(ctx, w.dep(), g, "s1")
	if err != nil {
		t.Fatalf("create snapshot: %v", err)
	}
	if s.Name != "s1" || !s.Memory || len(s.Disks) != 1 || s.Disks[0] != "vda" || s.State != "running" {
		t.Errorf("snapshot = %+v", s)
	}
	if _, err := w.drv.CreateSnapshot(ctx, w.dep(), g, "s1"); err == nil {
		t.Error("a second snapshot s1 was taken")
	}
	w.sh(t, "vm1", "echo after > /root/marker && printf after--disk | dd of=/dev/vda conv=fsync 2>/dev/null")
	if got := w.sh(t, "vm1", "cat /root/marker; dd if=/dev/vda bs=11 count=1 2>/dev/null"); got != "after\nafter--disk" {
		t.Fatalf("before restore: %q", got)
	}
	if err := w.drv.RestoreSnapshot(ctx, w.dep(), g, "s1"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := w.sh(t, "vm1", "cat /root/marker; dd if=/dev/vda bs=11 count=1 2>/dev/null"); got != "before\nbefore-disk" {
		t.Fatalf("after restore: %q, want the state of the snapshot", got)
	}
	list, err := w.drv.ListSnapshots(ctx, w.dep(), g)
	if err != nil || len(list) != 1 || !list[0].Current {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, err := w.drv.SnapshotInfo(ctx, w.dep(), g, "nope"); !errors.Is(err, guest.ErrNoSnapshot) || !strings.Contains(err.Error(), "it has s1") {
		t.Errorf("info of an unknown snapshot: %v", err)
	}
	if err := w.drv.DeleteSnapshot(ctx, w.dep(), g, "s1"); err != nil {
		t.Fatal(err)
	}
	if list, err := w.drv.ListSnapshots(ctx, w.dep(), g); err != nil || len(list) != 0 {
		t.Fatalf("list after delete = %+v, %v", list, err)
	}
}

// assertGone checks that no domain, pool, disk or tap of the deployment is
// left.
func assertGone(t *testing.T, w *world, st *topology.State) {
	t.Helper()
	domains, pools, err := libvirttest.Leftovers(w.d.Name)
	if err != nil || len(domains)+len(pools) > 0 {
		t.Errorf("left in libvirt: domains %v, pools %v (%v)", domains, pools, err)
	}
	var taps []string
	for _, g := range st.Guests {
		for _, ifc := range g.Interfaces {
			taps = append(taps, ifc.HostName)
		}
	}
	if left := libvirttest.WaitNoLinks(taps, 5*time.Second); len(left) > 0 {
		t.Errorf("taps left: %v", left)
	}
	disks, _ := filepath.Glob(filepath.Join(w.disks, "*"))
	if len(disks) > 0 {
		t.Errorf("disks left: %v", disks)
	}
}

// TestCreateFailureLeavesNothing: a cloud image (served locally, so it
// boots nothing) is downloaded once into the cache and linked-cloned; the
// guest never answers, Create fails after the ready timeout and leaves no
// domain, volume or pool. The cache keeps the image.
func TestCreateFailureLeavesNothing(t *testing.T) {
	libvirttest.Require(t)
	var downloads atomic.Int32
	image := make([]byte, 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			downloads.Add(1)
		}
		w.Write(image)
	}))
	defer srv.Close()
	yaml := `machines:
  - name: c1
    network: [{switch: sw0, ip: 10.0.0.30}]
    libvirt:
      cpus: 1
      memory_mb: 64
      libvirt_type:
        cloud_image: {url: "` + srv.URL + `/tiny.img"}
  - name: c2
    network: [{switch: sw0, ip: 10.0.0.31}]
    libvirt:
      cpus: 1
      memory_mb: 64
      libvirt_type:
        cloud_image: {url: "` + srv.URL + `/tiny.img"}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`
	dir := vmProject(t, testImage(t), yaml, map[string]string{})
	w := newWorld(t, dir, "lvf", libvirt.Options{DomainType: libvirt.TypeQEMU, ReadyTimeout: 3 * time.Second})
	ctx := libvirttest.Context(t)
	if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "artefacts/libvirt/c1/seed.img")); err != nil {
		t.Fatalf("seed: %v", err)
	}
	err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log)
	if err == nil || !strings.Contains(err.Error(), "not reachable over SSH") {
		t.Fatalf("up of guests that never answer: %v\n%s", err, w.log.Text())
	}
	// The error names the setting and the real last error, not the
	// deadline, and the deadline grew with the two guests booting at once
	// on this host's CPUs.
	for _, want := range []string{"testbed_options.ready_timeout", "TESTBEDOS_LIBVIRT_READY_TIMEOUT", "last error: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "last error: context deadline exceeded") || strings.Contains(err.Error(), "last error: <nil>") {
		t.Errorf("the last error is the deadline itself: %v", err)
	}
	if n := downloads.Load(); n != 1 {
		t.Errorf("the image was downloaded %d times, want once", n)
	}
	if !strings.Contains(w.log.Text(), "a linked clone of "+filepath.Join(dir, "cache", "sha256")) {
		t.Errorf("no linked clone of the cached image in the log:\n%s", w.log.Text())
	}
	assertGone(t, w, w.state(t))
	if cached, _ := filepath.Glob(filepath.Join(dir, "cache", "sha256", "*")); len(cached) != 1 {
		t.Errorf("cache holds %v", cached)
	}
	// The bridge the failed up made is gone too.
	st := w.state(t)
	if ok, _ := links.Exists(st.Switches[0].Bridge); ok {
		t.Errorf("bridge %s left", st.Switches[0].Bridge)
	}
}

// TestUnreachableLibvirtd: a socket nobody listens on fails every call with
// a message naming it.
func TestUnreachableLibvirtd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-libvirt-sock")
	drv := libvirt.New(libvirt.Options{Socket: sock})
	g := &topology.Guest{Name: "vm1", Kind: topology.KindLibvirt, Libvirt: &topology.LibvirtSpec{Domain: "tbos.x.vm1", Boot: topology.BootKernel}}
	_, err := drv.Exists(context.Background(), guest.Deployment{}, g)
	if !errors.Is(err, libvirt.ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach libvirtd at "+sock+": ") {
		t.Fatalf("Exists: %v", err)
	}
	st := &topology.State{Deployment: "x", Project: t.TempDir()}
	if err := drv.Destroy(context.Background(), guest.LocalDeployment(st), g, &guesttest.Log{}); !errors.Is(err, libvirt.ErrUnreachable) {
		t.Fatalf("Destroy: %v", err)
	}
}

// TestDomainTypeProbe: detection boots a kernel under KVM once per
// driver and keeps the verdict; on hosts where KVM hangs (nested, PVM-style
// hypervisors) it is qemu.
func TestDomainTypeProbe(t *testing.T) {
	libvirttest.Require(t)
	drv := libvirt.New(libvirt.Options{})
	log := &guesttest.Log{T: t}
	ctx := libvirttest.Context(t)
	start := time.Now()
	verdict, err := drv.DomainType(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verdict %s after %.1f s: %s", verdict, time.Since(start).Seconds(), log.Text())
	if verdict != libvirt.TypeKVM && verdict != libvirt.TypeQEMU || !strings.Contains(log.Text(), "virtual machines run under") {
		t.Fatalf("verdict %q, log %q", verdict, log.Text())
	}
	start = time.Now()
	if again, err := drv.DomainType(ctx, &guesttest.Log{}); err != nil || again != verdict || time.Since(start) > 2*time.Second {
		t.Fatalf("second call: %s %v after %s, want the cached verdict", again, err, time.Since(start))
	}
	if domains, _, _ := libvirttest.Leftovers("kvm-probe"); len(domains) > 0 {
		t.Fatalf("probe domains left: %v", domains)
	}
	if v, _ := libvirt.New(libvirt.Options{DomainType: libvirt.TypeKVM}).DomainType(ctx, log); v != libvirt.TypeKVM {
		t.Fatalf("override: %s", v)
	}
}
