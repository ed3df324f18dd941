package libvirt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
)

// TestDiskKinds: an existing disk gets a linked clone (qcow2 over the
// untouched original), scaled clones with create_deep_copy full copies, an
// ISO guest a blank disk and the ISO as its CD. None of them boots an OS
// here (the images are empty), so up does not wait for SSH; a domain shut
// off by itself is started again by the next up; down removes all disks.
func TestDiskKinds(t *testing.T) {
	libvirttest.Require(t)
	yaml := `machines:
  - name: clone
    network: [{switch: sw0, ip: 10.0.0.10}]
    libvirt:
      cpus: 1
      memory_mb: 32
      libvirt_type: {existing_disk: {path: base.img, driver_type: raw}}
  - name: copy
    network: [{switch: sw0, ip: 10.0.0.20}]
    scaling: {count: 2}
    libvirt:
      cpus: 1
      memory_mb: 32
      libvirt_type: {existing_disk: {path: base.img, driver_type: raw, create_deep_copy: true}}
  - name: cd
    network: [{switch: sw0, ip: 10.0.0.30}]
    libvirt:
      cpus: 1
      memory_mb: 32
      libvirt_type: {iso_guest: {path: live.iso}}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`
	base := bytes.Repeat([]byte("testbedos disk\n"), 70000) // ~1 MiB
	dir := vmProject(t, testImage(t), yaml, map[string]string{"base.img": string(base), "live.iso": "not really an ISO"})
	w := newWorld(t, dir, "lvd", libvirt.Options{DomainType: libvirt.TypeQEMU})
	ctx := libvirttest.Context(t)
	if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.Text())
	}
	disks := w.disks
	// The backing file is the pin of base.img, made from the descriptor
	// that was checked: the same file, whatever its path names later.
	got := qcow2Backing(t, filepath.Join(disks, "clone.qcow2"))
	if !sameFile(got, filepath.Join(dir, "base.img")) {
		t.Errorf("clone.qcow2 backing file = %q, not base.img", got)
	}
	for _, c := range []string{"copy-1.img", "copy-2.img"} {
		data, err := os.ReadFile(filepath.Join(disks, c))
		if err != nil || sha256.Sum256(data) != sha256.Sum256(base) {
			t.Errorf("%s is not a copy of base.img: %v", c, err)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "base.img")); !bytes.Equal(data, base) {
		t.Error("the original disk was changed")
	}
	if _, pools, _ := libvirttest.Leftovers(w.d.Name); len(pools) != 1 {
		t.Errorf("pools during up: %v, want the deployment's only (the copy source pool goes)", pools)
	}
	if blank := qcow2Size(t, filepath.Join(disks, "cd.qcow2")); blank != 16<<30 {
		t.Errorf("the ISO guest's disk has %d bytes", blank)
	}
	log := w.log.Text()
	for _, want := range []string{"a linked clone of " + filepath.Join(dir, "base.img"), "a full copy of", "blank, 16384 MiB thin"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// A guest that powered itself off is started again, its disk kept.
	st, g := w.guest(t, "clone")
	if err := libvirttest.Stop(g.Libvirt.Domain); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.drv.Exists(ctx, guest.Deployment{}, g); ok || err != nil {
		t.Fatalf("Exists of a stopped domain = %v, %v", ok, err)
	}
	// Create only starts it: it reports that it made nothing, so a failed
	// up never reverts (and deletes the disk of) a guest it did not make.
	if created, err := w.drv.Create(ctx, w.dep(), g, w.log); err != nil || created {
		t.Fatalf("Create of a stopped domain = %v, %v; want false (started, not made)", created, err)
	}
	if _, err := os.Stat(filepath.Join(disks, "clone.qcow2")); err != nil {
		t.Fatalf("the restarted guest's disk: %v", err)
	}
	if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.log.Text(), "was defined but not running: started it") {
		t.Errorf("second up did not restart the stopped guest:\n%s", w.log.Text())
	}

	if err := w.e.Down(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	assertGone(t, w, st)
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// qcow2Backing reads the backing file name from a qcow2 header.
func qcow2Backing(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 24 || string(data[:4]) != "QFI\xfb" {
		t.Fatalf("%s is not qcow2: %v", path, err)
	}
	off := binary.BigEndian.Uint64(data[8:])
	size := binary.BigEndian.Uint32(data[16:])
	return string(data[off : off+uint64(size)])
}

func qcow2Size(t *testing.T, path string) uint64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 32 {
		t.Fatalf("%s: %v", path, err)
	}
	return binary.BigEndian.Uint64(data[24:])
}
