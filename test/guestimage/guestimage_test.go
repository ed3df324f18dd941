package guestimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/base64"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/testenv"
)

// readCPIO parses a newc archive into a tree (for tests).
func readCPIO(t *testing.T, r io.Reader) (tree, []string) {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	out := tree{}
	var order []string
	pad := func(n int) int { return (n + 3) &^ 3 }
	off := 0
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad cpio header at %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		mode, size, major, minor, nameSize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+nameSize-1])
		dataOff := pad(off + 110 + nameSize)
		if name == "TRAILER!!!" {
			break
		}
		out[name] = entry{Name: name, Mode: mode, Data: b[dataOff : dataOff+size], Major: major, Minor: minor}
		order = append(order, name)
		off = pad(dataOff + size)
	}
	return out, order
}

func TestCPIORoundTrip(t *testing.T) {
	tr := tree{}
	tr.file("init", 0o755, []byte("#!/bin/sh\n"))
	tr.file("etc/tb/x", 0o644, []byte("abcde"))
	tr.symlink("bin/sh", "/bin/busybox")
	tr.charDev("dev/console", 0o600, 5, 1)
	tr.dir("tmp", 0o1777)
	var buf bytes.Buffer
	if err := writeCPIO(&buf, tr); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not a multiple of 4", buf.Len())
	}
	got, order := readCPIO(t, &buf)
	if len(got) != len(tr) {
		t.Fatalf("got %d entries, want %d: %v", len(got), len(tr), order)
	}
	for n, e := range tr {
		g := got[n]
		if g.Mode != e.Mode || !bytes.Equal(g.Data, e.Data) || g.Major != e.Major || g.Minor != e.Minor {
			t.Errorf("%s: got %+v, want %+v", n, g, e)
		}
	}
	// Parents before children.
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	if pos["etc"] > pos["etc/tb"] || pos["etc/tb"] > pos["etc/tb/x"] {
		t.Errorf("order %v", order)
	}
	if _, err := exec.LookPath("cpio"); err == nil {
		var again bytes.Buffer
		writeCPIO(&again, tr)
		cmd := exec.Command("cpio", "-it", "--quiet")
		cmd.Stdin = &again
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "etc/tb/x") {
			t.Errorf("cpio -it: %v\n%s", err, out)
		}
	} else {
		testenv.Missing(t, "cpio not installed: the archive is not read back")
	}
}

func TestCmdline(t *testing.T) {
	_, line, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := Params{
		IP:             netip.MustParsePrefix("10.0.0.20/24"),
		Gateway:        netip.MustParseAddr("10.0.0.1"),
		Hostname:       "vm1",
		AuthorizedKeys: []string{line},
		Nets: []NetAddr{
			{Dev: "eth1", Addr: netip.MustParsePrefix("10.1.0.5/24")},
			{Dev: "52:54:00:00:00:02", Addr: netip.MustParsePrefix("10.2.0.5/24")},
		},
		Routes: []Route{{Dst: netip.MustParsePrefix("10.9.0.0/16"), Via: netip.MustParseAddr("10.0.0.1")}},
		DNS:    []netip.Addr{netip.MustParseAddr("10.0.0.1")},
	}
	s, err := p.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	want := "console=ttyS0 panic=-1 no_timer_check quiet tb.ip=10.0.0.20/24 tb.gw=10.0.0.1 tb.hostname=vm1 " +
		"tb.net=eth1,10.1.0.5/24 tb.net=52:54:00:00:00:02,10.2.0.5/24 tb.route=10.9.0.0/16,10.0.0.1 tb.dns=10.0.0.1 " +
		"tb.key=" + base64.StdEncoding.EncodeToString([]byte(line))
	if s != want {
		t.Errorf("cmdline\n got %s\nwant %s", s, want)
	}
	if strings.Count(s, " ") != strings.Count(want, " ") {
		t.Error("spaces leaked into a parameter")
	}

	for _, bad := range []Params{
		{Hostname: "bad name"},
		{Hostname: "-x"},
		{AuthorizedKeys: []string{"not a key"}},
		{Nets: []NetAddr{{Dev: "eth 1", Addr: netip.MustParsePrefix("10.0.0.1/24")}}},
		{Nets: []NetAddr{{Dev: "eth1"}}},
		{Extra: []string{"a b"}},
		{Extra: []string{strings.Repeat("x", MaxCmdline)}},
	} {
		if _, err := bad.Cmdline(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	s, err = Params{Console: "none", Verbose: true, Extra: []string{"loglevel=7"}}.Cmdline()
	if err != nil || s != "panic=-1 no_timer_check loglevel=7" {
		t.Errorf("minimal: %q %v", s, err)
	}
}

func TestParseConsole(t *testing.T) {
	_, line, _ := GenerateKey()
	key, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(line))
	log := "[    0.1] booting\r\ntb-init: something\r\n" + HostKeyMarker + " " + line + "\r\n" +
		ReadyMarker + " hostname=vm1 ip=eth0=10.0.0.20/24 mac=52:54:00:00:00:01 uptime=2.50\r\nmore\n"
	r, err := ParseConsole([]byte(log))
	if err != nil || r == nil {
		t.Fatalf("ParseConsole: %v %v", r, err)
	}
	if r.Hostname != "vm1" || r.Uptime != "2.50" || r.Fields["ip"] != "eth0=10.0.0.20/24" || r.Fields["mac"] != "52:54:00:00:00:01" {
		t.Errorf("fields %+v", r)
	}
	if r.HostKey == nil || !bytes.Equal(r.HostKey.Marshal(), key.Marshal()) {
		t.Error("host key not parsed")
	}
	if strings.Contains(r.Console, "more") || !strings.Contains(r.Console, "booting") {
		t.Errorf("console %q", r.Console)
	}
	if r, err := ParseConsole([]byte("[ 0.1] booting\n" + ReadyMarker + "X\n")); r != nil || err != nil {
		t.Errorf("not ready yet: %v %v", r, err)
	}
	if _, err := ParseConsole([]byte(ErrorMarker + " insmod virtio_net: boom\n")); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("error line: %v", err)
	}
	if _, err := ParseConsole([]byte("[ 1.0] Kernel panic - not syncing: x\n")); err == nil {
		t.Error("panic not reported")
	}

	// WaitReady gives up with the console tail in the error.
	p := filepath.Join(t.TempDir(), "console.log")
	os.WriteFile(p, []byte("still booting\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WaitReady(ctx, p); err == nil || !strings.Contains(err.Error(), "still booting") {
		t.Errorf("WaitReady: %v", err)
	}
	os.WriteFile(p, []byte(log), 0o644)
	if r, err := WaitReady(context.Background(), p); err != nil || r.Hostname != "vm1" {
		t.Errorf("WaitReady: %v %v", r, err)
	}
}

func TestResolveModules(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko.zst:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko.zst kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko.gz:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko.gz
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko.gz kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/block/virtio_blk.ko\n"), 0o644)

	mods, err := resolveModules(dir, RequiredModules, []string{"virtio_blk", "virtio_rng", "no_such_thing"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, fmt.Sprintf("%s:%v", m.Name, m.Required))
	}
	want := "virtio_ring:true virtio:true virtio_pci_modern_dev:true virtio_pci_legacy_dev:true virtio_pci:true " +
		"failover:true net_failover:true virtio_net:true virtio_rng:false"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("order\n got %s\nwant %s", got, want)
	}
	// Dependencies first even when asked in another order.
	mods, err = resolveModules(dir, []string{"virtio_net"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mods[0].Name != "virtio_ring" || mods[len(mods)-1].Name != "virtio_net" {
		t.Errorf("deps not first: %+v", mods)
	}
	// A missing required module is an error; a built-in one is fine.
	if _, err := resolveModules(dir, []string{"virtio_blk"}, nil); err != nil {
		t.Errorf("built-in required module: %v", err)
	}
	if _, err := resolveModules(dir, []string{"e1000"}, nil); err == nil {
		t.Error("missing required module accepted")
	}
}

func TestReadModuleCompressed(t *testing.T) {
	dir := t.TempDir()
	content := bytes.Repeat([]byte("\x7fELF module "), 100)
	plain := filepath.Join(dir, "a.ko")
	os.WriteFile(plain, content, 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(content)
	zw.Close()
	os.WriteFile(filepath.Join(dir, "b.ko.gz"), gz.Bytes(), 0o644)
	files := []string{"a.ko", "b.ko.gz"}
	for _, c := range []struct{ tool, ext string }{{"xz", ".xz"}, {"zstd", ".zst"}} {
		if _, err := exec.LookPath(c.tool); err != nil {
			testenv.Missing(t, fmt.Sprintf("%s not installed: not testing .ko%s", c.tool, c.ext))
			continue
		}
		if out, err := exec.Command(c.tool, "-kq", plain).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", c.tool, err, out)
		}
		files = append(files, "a.ko"+c.ext)
	}
	for _, f := range files {
		got, err := readModule(filepath.Join(dir, f))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: %d bytes, %v", f, len(got), err)
		}
	}
	if _, err := readModule(filepath.Join(dir, "a.ko.bz2")); err == nil {
		t.Error("unknown compression accepted")
	}
}

// TestBuild builds a real image (when the host has a kernel and busybox)
// and checks what the initramfs holds.
func TestBuild(t *testing.T) {
	kver, err := FindKernel("/boot", "/lib/modules")
	if err != nil {
		testenv.Skipf(t, "no kernel to build from (scripts/install-test-deps.sh installs linux-image-amd64): %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Skip(t, "busybox-static not installed (scripts/install-test-deps.sh installs it)")
	}
	out := t.TempDir()
	img, err := Build(context.Background(), out, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %v", img.BuildTime)
	if img.KernelVersion != kver || img.Kernel != filepath.Join(out, "vmlinuz") || img.Initrd != filepath.Join(out, "initramfs.cpio.gz") {
		t.Errorf("image %+v", img)
	}
	if img.KernelELF != "" {
		f, err := elf.Open(img.KernelELF)
		if err != nil {
			t.Fatal(err)
		}
		if !hasPVHNote(f) {
			t.Error("vmlinux without PVH note")
		}
		f.Close()
	}
	f, err := os.Open(img.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := readCPIO(t, zr)
	for _, n := range []string{"init", "bin/busybox", "bin/sh", "sbin/tb-sshd", "etc/inittab", "etc/tb/modules", "etc/tb/ready", "etc/tb/run-sshd", "dev/console", "lib/modules/tb/virtio_net.ko"} {
		if _, ok := tr[n]; !ok {
			t.Errorf("initramfs lacks %s", n)
		}
	}
	if e := tr["init"]; e.Mode != modeRegular|0o755 {
		t.Errorf("init mode %o", e.Mode)
	}
	if e := tr["bin/sh"]; e.Mode&0o170000 != modeSymlink || string(e.Data) != "/bin/busybox" {
		t.Errorf("bin/sh: %+v", e)
	}
	if e := tr["dev/console"]; e.Mode != modeCharDev|0o600 || e.Major != 5 || e.Minor != 1 {
		t.Errorf("dev/console: %+v", e)
	}
	// Modules: the required ones, in order, uncompressed ELF.
	lines := strings.Split(strings.TrimSpace(string(tr["etc/tb/modules"].Data)), "\n")
	var req []string
	for _, l := range lines {
		name, kind, _ := strings.Cut(l, " ")
		if kind == "required" {
			req = append(req, name)
		}
		if d := tr["lib/modules/tb/"+name+".ko"].Data; !bytes.HasPrefix(d, []byte("\x7fELF")) {
			t.Errorf("module %s is not a plain ELF file", name)
		}
	}
	if got, want := strings.Join(req, " "), strings.Join(RequiredModules, " "); got != want {
		t.Errorf("required modules\n got %s\nwant %s", got, want)
	}
	// The SSH server is static.
	tmp := filepath.Join(t.TempDir(), "sshd")
	os.WriteFile(tmp, tr["sbin/tb-sshd"].Data, 0o755)
	if err := checkStatic(tmp); err != nil {
		t.Error(err)
	}
	// The busybox applets the init scripts use are there.
	for _, a := range []string{"mount", "insmod", "ip", "base64", "hostname", "sleep", "awk", "acpid", "poweroff", "ping"} {
		found := false
		for _, d := range []string{"bin/", "sbin/", "usr/bin/", "usr/sbin/"} {
			if _, ok := tr[d+a]; ok {
				found = true
			}
		}
		if !found {
			t.Errorf("no busybox applet %s", a)
		}
	}
}
