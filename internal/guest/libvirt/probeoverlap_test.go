package libvirt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
)

// The first up of a driver that detects the domain type makes the guest's
// disk while the KVM probe runs, instead of after it: the probe's seconds
// overlap the disk's (the image's download, for a cloud image).
func TestProbeOverlapsDisk(t *testing.T) {
	libvirttest.Require(t)
	img := testImage(t)
	dir := vmProject(t, img, oneVM, map[string]string{"setup.sh": "#!/bin/sh\n"})
	w := newWorld(t, dir, "lvp", libvirt.Options{DomainType: libvirt.TypeAuto, ProbeTimeout: 3 * time.Second})
	ctx := libvirttest.Context(t)
	if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
	if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
		t.Fatalf("up: %v\n%s", err, w.log.Text())
	}
	text := w.log.Text()
	disk, probe := strings.Index(text, "disk vm1.qcow2"), strings.Index(text, "virtual machines run under")
	if disk < 0 || probe < 0 || disk > probe {
		t.Errorf("the disk was made after the probe (or a line is missing):\n%s", text)
	}
	if err := w.e.Down(ctx, w.d, w.log); err != nil {
		t.Fatal(err)
	}
}
