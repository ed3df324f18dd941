package libvirt

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/topology"
)

func testState(t *testing.T) (*topology.State, *topology.Guest) {
	st := &topology.State{Deployment: "lab", Project: t.TempDir(), GeneratedAt: time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)}
	st.Guests = []topology.Guest{{
		Name: "vm1", Kind: topology.KindLibvirt,
		Interfaces: []topology.Interface{
			{Switch: "sw0", Bridge: "tbaaaaabbbbbbb", Name: "eth0", HostName: "tbaaaaav0000001", Address: "10.0.0.20/24", MAC: "52:54:00:aa:bb:01", Gateway: "10.0.0.1"},
			{Switch: "sw1", Bridge: "tbaaaaabccccccc"[:14], Name: "eth1", HostName: "tbaaaaav0000002", Address: "10.1.0.20/24", MAC: "52:54:00:aa:bb:02"},
		},
		Libvirt: &topology.LibvirtSpec{Domain: "tbos.lab.vm1", CPUs: 2, MemoryMB: 256, Boot: topology.BootKernel, Kernel: "/p/vmlinuz", Initrd: "/p/initrd"},
	}}
	return st, &st.Guests[0]
}

func TestKernelCmdline(t *testing.T) {
	_, g := testState(t)
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5w9c3Vb7l5k0b8k9mJj1f3x2d2q2uJ8l0Zb0Xq8pXH testbedos-lab"
	for _, tc := range []struct {
		cmdline string
		want    string
	}{
		{"", "console=ttyS0 no_timer_check tb.hostname=vm1 tb.ip=10.0.0.20/24 tb.net=52:54:00:aa:bb:02,10.1.0.20/24 tb.gw=10.0.0.1 tb.key="},
		{"quiet panic=-1", "console=ttyS0 quiet panic=-1 no_timer_check tb.hostname=vm1"},
		{"console=hvc0 ro no_timer_check", "console=hvc0 ro no_timer_check tb.hostname=vm1"},
	} {
		g.Libvirt.Cmdline = tc.cmdline
		got, err := kernelCmdline(g.Libvirt, g, key)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("cmdline %q = %q, want it to start with %q", tc.cmdline, got, tc.want)
		}
		b64 := got[strings.Index(got, "tb.key=")+len("tb.key="):]
		if dec, _ := base64.StdEncoding.DecodeString(b64); string(dec) != key {
			t.Errorf("tb.key decodes to %q", dec)
		}
	}
	g.Libvirt.Cmdline = strings.Repeat("x", 2100)
	if _, err := kernelCmdline(g.Libvirt, g, key); err == nil || !strings.Contains(err.Error(), "limit is 2047") {
		t.Errorf("overlong cmdline: %v", err)
	}
}

func TestBuildDomain(t *testing.T) {
	st, g := testState(t)
	g.Interfaces[1].MTU = topology.TunnelMTU // on a switch spanning hosts
	p := New(Options{}).depPaths(guest.LocalDeployment(st), g)
	for _, tc := range []struct {
		boot  func(*topology.LibvirtSpec)
		check func(t *testing.T, d *libvirtxml.Domain)
	}{
		{func(s *topology.LibvirtSpec) {}, func(t *testing.T, d *libvirtxml.Domain) {
			if d.OS.Kernel != "/p/vmlinuz" || d.OS.Initrd != "/p/initrd" || !strings.Contains(d.OS.Cmdline, "tb.ip=10.0.0.20/24") {
				t.Errorf("os = %+v", d.OS)
			}
			if disk := d.Devices.Disks[0]; disk.Driver.Type != "qcow2" || disk.Source.File.File != filepath.Join(p.poolDir, "vm1.qcow2") {
				t.Errorf("disk = %+v", disk.Source.File)
			}
		}},
		{func(s *topology.LibvirtSpec) {
			s.Boot, s.DiskPath, s.DiskFormat, s.DeepCopy = topology.BootExistingDisk, "/p/disk.img", "raw", true
		}, func(t *testing.T, d *libvirtxml.Domain) {
			if disk := d.Devices.Disks[0]; disk.Driver.Type != "raw" || !strings.HasSuffix(disk.Source.File.File, "/vm1.img") {
				t.Errorf("deep copy of a raw disk = %+v %+v", disk.Driver, disk.Source.File)
			}
			if d.OS.Kernel != "" || d.OS.BootDevices[0].Dev != "hd" {
				t.Errorf("os = %+v", d.OS)
			}
		}},
		{func(s *topology.LibvirtSpec) { s.Boot, s.ISOPath = topology.BootISOGuest, "/p/x.iso" }, func(t *testing.T, d *libvirtxml.Domain) {
			cd := d.Devices.Disks[1]
			if cd.Device != "cdrom" || cd.ReadOnly == nil || cd.Snapshot != "no" || cd.Source.File.File != "/p/x.iso" || d.OS.BootDevices[0].Dev != "cdrom" {
				t.Errorf("cdrom = %+v", cd)
			}
			if len(d.Devices.Graphics) != 1 || d.Devices.Graphics[0].VNC.Listen != "127.0.0.1" {
				t.Errorf("an installer gets a VNC screen on localhost: %+v", d.Devices.Graphics)
			}
		}},
		{func(s *topology.LibvirtSpec) { s.Boot, s.ImageURL = topology.BootCloudImage, "https://x/y.qcow2" }, func(t *testing.T, d *libvirtxml.Domain) {
			seed := d.Devices.Disks[1]
			if seed.Source.File.File != p.seed || seed.ReadOnly == nil || seed.Target.Dev != "vdb" {
				t.Errorf("seed = %+v", seed)
			}
		}},
	} {
		spec := *g.Libvirt
		tc.boot(&spec)
		gg := *g
		gg.Libvirt = &spec
		doc, err := buildDomain(st, &gg, p, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5w9c3Vb7l5k0b8k9mJj1f3x2d2q2uJ8l0Zb0Xq8pXH x", "")
		if err != nil {
			t.Fatal(err)
		}
		// Through XML and back, as Create reads it.
		raw, err := doc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var d libvirtxml.Domain
		if err := d.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		if d.Name != "tbos.lab.vm1" || d.Memory.Value != 256 || d.Memory.Unit != "MiB" || d.VCPU.Value != 2 {
			t.Errorf("%s: name/memory/vcpu = %s %+v %+v", spec.Boot, d.Name, d.Memory, d.VCPU)
		}
		if d.Features == nil || d.Features.ACPI == nil || d.Features.APIC == nil {
			t.Errorf("%s: features = %+v", spec.Boot, d.Features)
		}
		if n := len(d.Devices.Interfaces); n != 2 {
			t.Fatalf("%s: %d interfaces", spec.Boot, n)
		}
		nic := d.Devices.Interfaces[1]
		if nic.Source.Bridge.Bridge != g.Interfaces[1].Bridge || nic.MAC.Address != "52:54:00:aa:bb:02" || nic.Target.Dev != "tbaaaaav0000002" || nic.Model.Type != "virtio" {
			t.Errorf("%s: nic = %+v %+v %+v", spec.Boot, nic.Source.Bridge, nic.MAC, nic.Target)
		}
		if m0, m1 := d.Devices.Interfaces[0].MTU, nic.MTU; m0 != nil || m1 == nil || m1.Size != topology.TunnelMTU {
			t.Errorf("%s: MTUs %+v, %+v; want none, then %d", spec.Boot, m0, m1, topology.TunnelMTU)
		}
		if s := d.Devices.Serials[0]; s.Source.Pty == nil || s.Log == nil || s.Log.File != p.console || s.Log.Append != "off" {
			t.Errorf("%s: serial = %+v, log %+v", spec.Boot, s.Source, s.Log)
		}
		if d.Metadata == nil || !strings.Contains(d.Metadata.XML, `deployment="lab" guest="vm1"`) {
			t.Errorf("%s: metadata = %+v", spec.Boot, d.Metadata)
		}
		tc.check(t, &d)
		setDomainType(domainDoc{&d}, TypeKVM)
		if d.Type != "kvm" || d.CPU == nil || d.CPU.Mode != "host-passthrough" {
			t.Errorf("kvm: %s %+v", d.Type, d.CPU)
		}
		setDomainType(domainDoc{&d}, TypeQEMU)
		if d.Type != "qemu" || d.CPU != nil {
			t.Errorf("qemu: %s %+v", d.Type, d.CPU)
		}
	}
}

func TestCloudSeed(t *testing.T) {
	st, g := testState(t)
	g.Libvirt.Boot = topology.BootCloudImage
	out := testRoot(t)
	hk, err := ensureHostKey(out, filepath.Join(out.Dir(), "hk"), "vm1")
	if err != nil {
		t.Fatal(err)
	}
	other := testRoot(t)
	again, _ := ensureHostKey(other, filepath.Join(other.Dir(), "nope"), "vm1")
	if string(again.pem) == string(hk.pem) {
		t.Fatal("two host keys are equal")
	}
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5w9c3Vb7l5k0b8k9mJj1f3x2d2q2uJ8l0Zb0Xq8pXH testbedos-lab"
	files, err := cloudFiles(st, g, key, hk)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, f := range files {
		byName[f.Name] = string(f.Data)
	}
	if !strings.HasPrefix(byName["user-data"], "#cloud-config\n") {
		t.Fatalf("user-data:\n%s", byName["user-data"])
	}
	var user struct {
		Hostname    string            `yaml:"hostname"`
		DisableRoot bool              `yaml:"disable_root"`
		Keys        []string          `yaml:"ssh_authorized_keys"`
		HostKeys    map[string]string `yaml:"ssh_keys"`
		Users       []any             `yaml:"users"`
	}
	if err := yaml.Unmarshal([]byte(byName["user-data"]), &user); err != nil {
		t.Fatal(err)
	}
	if user.Hostname != "vm1" || user.DisableRoot || len(user.Keys) != 1 || user.Keys[0] != key || len(user.Users) != 2 {
		t.Errorf("user-data = %+v", user)
	}
	if s, err := ssh.ParsePrivateKey([]byte(user.HostKeys["ed25519_private"])); err != nil || string(s.PublicKey().Marshal()) != string(hk.signer.PublicKey().Marshal()) {
		t.Errorf("host key in the seed: %v", err)
	}
	var net netConfig
	if err := yaml.Unmarshal([]byte(byName["network-config"]), &net); err != nil {
		t.Fatal(err)
	}
	eth0 := net.Ethernets["eth0"]
	if net.Version != 2 || eth0.Match["macaddress"] != "52:54:00:aa:bb:01" || eth0.Addresses[0] != "10.0.0.20/24" || eth0.Routes[0].Via != "10.0.0.1" || eth0.SetName != "eth0" {
		t.Errorf("network-config:\n%s", byName["network-config"])
	}
	if eth1 := net.Ethernets["eth1"]; len(eth1.Routes) != 0 || eth1.Addresses[0] != "10.1.0.20/24" {
		t.Errorf("eth1 = %+v", eth1)
	}
	if !strings.Contains(byName["meta-data"], "instance-id: tbos.lab.vm1") || !strings.Contains(byName["meta-data"], "local-hostname: vm1") {
		t.Errorf("meta-data:\n%s", byName["meta-data"])
	}
}

// TestFATImage writes a seed and reads it back with tools that know FAT
// (blkid from util-linux; fsck.fat and mtools when installed, which
// scripts/install-test-deps.sh does).
func TestFATImage(t *testing.T) {
	long := strings.Repeat("0123456789", 200) // several clusters
	files := []fatFile{
		{Name: "meta-data", Data: []byte("instance-id: x\n")},
		{Name: "user-data", Data: []byte(long)},
		{Name: "network-config", Data: []byte("version: 2\n")},
		{Name: "exactly13char", Data: nil},
	}
	img, err := fatImage("cidata", files, time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("blkid"); err == nil {
		out, err := exec.Command("blkid", "-p", "-o", "export", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "TYPE=vfat") || !strings.Contains(string(out), "LABEL=CIDATA") {
			t.Errorf("blkid: %v\n%s", err, out)
		}
	} else {
		testenv.Missing(t, "blkid not installed: type and label not checked")
	}
	if _, err := exec.LookPath("fsck.fat"); err == nil {
		if out, err := exec.Command("fsck.fat", "-n", "-V", path).CombinedOutput(); err != nil {
			t.Errorf("fsck.fat: %v\n%s", err, out)
		}
	} else {
		testenv.Missing(t, "fsck.fat not installed (scripts/install-test-deps.sh installs dosfstools): structure not checked")
	}
	if _, err := exec.LookPath("mtype"); err != nil {
		testenv.Skip(t, "mtools not installed (scripts/install-test-deps.sh installs it): contents not read back")
	}
	env := append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	dir := exec.Command("mdir", "-b", "-i", path, "::")
	dir.Env = env
	out, err := dir.CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, out)
	}
	for _, f := range files {
		if !strings.Contains(string(out), "::/"+f.Name+"\n") {
			t.Errorf("mdir lacks %s:\n%s", f.Name, out)
		}
		cat := exec.Command("mtype", "-i", path, "::/"+f.Name)
		cat.Env = env
		got, err := cat.Output()
		if err != nil || string(got) != string(f.Data) {
			t.Errorf("mtype %s: %v: %d bytes, want %d", f.Name, err, len(got), len(f.Data))
		}
	}
	if _, err := fatImage("cidata", []fatFile{{Name: "big", Data: make([]byte, 2<<20)}}, time.Now()); err == nil {
		t.Error("2 MiB fit on a 1.44 MB image")
	}
}

func TestPermissionHint(t *testing.T) {
	closed := filepath.Join(t.TempDir(), "closed")
	os.MkdirAll(filepath.Join(closed, "project"), 0o755)
	os.Chmod(closed, 0o700)
	dom := domainDoc{&libvirtxml.Domain{OS: &libvirtxml.DomainOS{Kernel: filepath.Join(closed, "project", "vmlinuz")}}}
	hint := permissionHint(errors.New("Could not open '/x/vmlinuz': Permission denied"), dom)
	if !strings.Contains(hint, "cannot enter "+closed+", mode 700") || !strings.Contains(hint, "chmod o+x "+closed) {
		t.Errorf("hint = %q", hint)
	}
	// The backing image of a linked clone, under a data folder QEMU's user
	// cannot enter (a clone of the project in /root).
	data := filepath.Join(t.TempDir(), "root")
	image := filepath.Join(data, "cache", "images", "sha256", "abc")
	os.MkdirAll(filepath.Dir(image), 0o755)
	os.WriteFile(image, nil, 0o644)
	os.Chmod(data, 0o700)
	hint = permissionHint(errors.New("Could not open backing file: Permission denied"), domainDoc{&libvirtxml.Domain{}}, image)
	if !strings.Contains(hint, "cannot enter "+data+", mode 700, above "+image) || !strings.Contains(hint, "chmod o+x "+data) {
		t.Errorf("hint for the backing image = %q", hint)
	}
	if permissionHint(errors.New("something else"), dom) != "" {
		t.Error("a hint for an error that is not about permissions")
	}
}

// testRoot is a fresh folder to write artefacts into.
func testRoot(t *testing.T) *atomicfile.Root {
	t.Helper()
	r, err := atomicfile.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
