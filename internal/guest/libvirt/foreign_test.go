package libvirt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// isoProject is a project QEMU's user can enter with one iso_guest VM,
// which starts without waiting for SSH.
func isoProject(t *testing.T, subnet string) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "install.iso"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := `machines:
  - name: vm
    network: [{switch: sw0, ip: ` + subnet + `.10}]
    libvirt:
      cpus: 1
      memory_mb: 128
      libvirt_type:
        iso_guest: {path: install.iso}
network:
  switches:
    sw0: {subnet: ` + subnet + `.0/24}
`
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A shut-off domain of a guest's name that TestbedOS did not define is not
// adopted: up fails naming it, and down leaves it defined.
func TestUpRefusesAForeignShutOffDomain(t *testing.T) {
	libvirttest.Require(t)
	dir := isoProject(t, "10.84.0")
	w := newWorld(t, dir, "lvx", libvirt.Options{DomainType: libvirt.TypeQEMU})
	ctx := libvirttest.Context(t)
	if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	dom := topology.DomainName(w.d.Name, "vm")
	for _, tt := range []struct{ name, metadata, says string }{
		{"unmarked", "", "not marked as guest vm"},
		{"another server's", `<tbos:guest xmlns:tbos="https://testbedos.org/xmlns/libvirt-guest/1" deployment="` + w.d.Name + `" guest="vm" server="other-server"/>`, "of another server"},
	} {
		if err := libvirttest.DefineShutOff(dom, tt.metadata); err != nil {
			t.Fatal(err)
		}
		err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log)
		if !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), "shut-off domain "+dom) || !strings.Contains(err.Error(), tt.says) {
			t.Fatalf("%s: up over a foreign shut-off domain = %v, want a conflict naming it, saying %q", tt.name, err, tt.says)
		}
		if err := w.e.Down(ctx, w.d, w.log); err != nil {
			t.Fatal(err)
		}
		if ok, err := libvirttest.Defined(dom); err != nil || !ok {
			t.Fatalf("%s: the foreign domain is gone (%v)", tt.name, err)
		}
		if err := libvirttest.RemoveAll(w.d.Name); err != nil {
			t.Fatal(err)
		}
	}
}

// The project's artefacts/libvirt is a copy for the user: a domain.xml
// edited to log the console into another file, and a disks folder swapped
// for a symlink, change nothing up and down do.
func TestUpIgnoresTheProjectsLibvirtCopy(t *testing.T) {
	libvirttest.Require(t)
	dir := isoProject(t, "10.85.0")
	w := newWorld(t, dir, "lvc", libvirt.Options{DomainType: libvirt.TypeQEMU})
	ctx := libvirttest.Context(t)
	if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	xmlPath := filepath.Join(dir, "artefacts", "libvirt", "vm", "domain.xml")
	xml, err := os.ReadFile(xmlPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := string(xml)
	i := strings.Index(edited, "<log file=\"")
	if i < 0 {
		t.Fatalf("no console log in %s", xmlPath)
	}
	j := strings.Index(edited[i+len("<log file=\""):], "\"")
	edited = edited[:i] + "<log file=\"" + victim + edited[i+len("<log file=\"")+j:]
	if err := os.WriteFile(xmlPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	otherDisk := filepath.Join(elsewhere, "vm.qcow2")
	if err := os.WriteFile(otherDisk, []byte("someone's disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	disks := filepath.Join(dir, "artefacts", "libvirt", "disks")
	os.RemoveAll(disks)
	if err := os.Symlink(elsewhere, disks); err != nil {
		t.Fatal(err)
	}

	if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
		t.Fatal(err)
	}
	if err := w.e.Down(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(victim); err != nil || string(data) != "precious\n" {
		t.Errorf("the file the edited domain.xml named was changed: %q, %v", data, err)
	}
	if data, err := os.ReadFile(otherDisk); err != nil || string(data) != "someone's disk" {
		t.Errorf("the disk behind the symlinked disks folder was changed: %q, %v", data, err)
	}
	domains, pools, err := libvirttest.Leftovers(w.d.Name)
	if err != nil || len(domains)+len(pools) > 0 {
		t.Errorf("left behind: domains %v, pools %v (%v)", domains, pools, err)
	}
}

// A VM's backing disk is the project file that was checked: when the
// project's folder of it is swapped for a symlink out of the project, the
// restart of the shut-off guest refuses it instead of handing QEMU another
// file.
func TestBackingDiskSwappedForASymlinkIsRefused(t *testing.T) {
	libvirttest.Require(t)
	dir := isoProject(t, "10.86.0")
	yaml := `machines:
  - name: clone
    network: [{switch: sw0, ip: 10.86.0.10}]
    libvirt:
      cpus: 1
      memory_mb: 32
      libvirt_type: {existing_disk: {path: imgs/base.img, driver_type: raw}}
network:
  switches:
    sw0: {subnet: 10.86.0.0/24}
`
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644)
	os.Mkdir(filepath.Join(dir, "imgs"), 0o755)
	os.WriteFile(filepath.Join(dir, "imgs", "base.img"), make([]byte, 1<<20), 0o644)
	w := newWorld(t, dir, "lvs", libvirt.Options{DomainType: libvirt.TypeQEMU})
	ctx := libvirttest.Context(t)
	if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
		t.Fatal(err)
	}
	_, g := w.guest(t, "clone")
	if err := libvirttest.Stop(g.Libvirt.Domain); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	secret := filepath.Join(outside, "base.img")
	if err := os.WriteFile(secret, []byte("root-only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "imgs"), filepath.Join(dir, "imgs.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "imgs")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.drv.Create(ctx, w.dep(), g, w.log); err == nil || !strings.Contains(err.Error(), "outside the project") {
		t.Fatalf("restart with the disk's folder swapped for a symlink = %v, want a refusal", err)
	}
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the file outside the project was touched: %v, %v", fi, err)
	}
	if err := w.e.Down(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
}
