package libvirt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// accelCache holds the domain type found for this process.
type accelCache struct {
	mu      sync.Mutex
	verdict string
	why     string
}

// DomainType is the domain type this driver's guests get (kvm or qemu),
// probing KVM the first time when it is left to detection.
func (d *Driver) DomainType(ctx context.Context, log actlog.Log) (string, error) {
	switch d.opts.DomainType {
	case TypeKVM, TypeQEMU:
		return d.opts.DomainType, nil
	}
	s, err := d.connect(ctx)
	if err != nil {
		return "", err
	}
	defer s.close()
	return d.domainType(ctx, s, log)
}

// domainTypeAsync starts DomainType and returns a function that waits for
// its answer (every call returns the same).
func (d *Driver) domainTypeAsync(ctx context.Context, log actlog.Log) func() (string, error) {
	var (
		t    string
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		t, err = d.DomainType(ctx, log)
	}()
	return func() (string, error) {
		<-done
		return t, err
	}
}

// domainType is the <domain type> guests get: the override when one is
// set, else kvm if a kernel really boots under KVM here, else qemu. The
// probe runs once per process; callers meanwhile wait for it.
func (d *Driver) domainType(ctx context.Context, s *session, log actlog.Log) (string, error) {
	switch d.opts.DomainType {
	case TypeKVM, TypeQEMU:
		return d.opts.DomainType, nil
	}
	d.accel.mu.Lock()
	defer d.accel.mu.Unlock()
	if d.accel.verdict != "" {
		return d.accel.verdict, nil
	}
	verdict, why, err := d.probeKVM(ctx, s)
	if err != nil {
		return "", err
	}
	d.accel.verdict, d.accel.why = verdict, why
	log.Printf("    virtual machines run under %s: %s (set TESTBEDOS_LIBVIRT_DOMAIN_TYPE=kvm|qemu to choose)", describeType(verdict), why)
	d.log.Info("libvirt domain type", "type", verdict, "why", why)
	return verdict, nil
}

// probeMarkers are what a kernel prints once it has booted as far as
// mounting its root file system, which the probe gives it none of. Not any
// panic: "IO-APIC + timer doesn't work" is a panic of a KVM that fails.
var probeMarkers = []string{"Unable to mount root"}

// probeKVM boots a kernel under KVM with no root file system and waits for
// it to complete its start-up and fail to mount one. /dev/kvm answering is
// not enough: under some nested hypervisors KVM runs a BIOS and even a
// kernel's decompressor, then hangs.
func (d *Driver) probeKVM(ctx context.Context, s *session) (verdict, why string, err error) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return TypeQEMU, "no /dev/kvm", nil
	}
	kernel := d.opts.ProbeKernel
	if kernel == "" {
		kernel = newestKernel("/boot")
	}
	if kernel == "" {
		return TypeQEMU, "no kernel to test KVM with (no /boot/vmlinuz-*; TESTBEDOS_LIBVIRT_PROBE_KERNEL names one)", nil
	}
	// QEMU runs as an unprivileged user and libvirt relabels what it
	// opens: give it a copy in a folder of its own, not the host's /boot.
	dir, err := os.MkdirTemp("", "testbedos-kvm-probe-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", "", err
	}
	kcopy := filepath.Join(dir, "vmlinuz")
	if err := copyFile(kernel, kcopy, 0o644); err != nil {
		return TypeQEMU, fmt.Sprintf("cannot read the test kernel %s: %v", kernel, err), nil
	}
	console := filepath.Join(dir, "console.log")
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	port := uint(0)
	dom := &libvirtxml.Domain{
		Type:   TypeKVM,
		Name:   "tbos-kvm-probe-" + hex.EncodeToString(suffix),
		Memory: &libvirtxml.DomainMemory{Value: 128, Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		CPU:    &libvirtxml.DomainCPU{Mode: "host-passthrough"},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Type: "hvm"},
			Kernel:  kcopy,
			Cmdline: "console=ttyS0 quiet panic=0 no_timer_check",
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: console}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	xml, err := dom.Marshal()
	if err != nil {
		return "", "", err
	}
	start := time.Now()
	probe, err := s.DomainCreateXML(xml, 0)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return TypeQEMU, fmt.Sprintf("libvirt cannot start a KVM domain: %v", firstLine(err.Error())), nil
	}
	// A transient domain: destroying it removes it.
	defer s.DomainDestroy(probe)
	deadline := time.NewTimer(d.opts.ProbeTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		out, _ := os.ReadFile(console)
		for _, m := range probeMarkers {
			if strings.Contains(string(out), m) {
				return TypeKVM, fmt.Sprintf("a test kernel (%s) booted under KVM in %.1f s", filepath.Base(kernel), time.Since(start).Seconds()), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-deadline.C:
			return TypeQEMU, fmt.Sprintf("/dev/kvm is there, but a test kernel (%s) did not boot under KVM within %s", filepath.Base(kernel), d.opts.ProbeTimeout), nil
		case <-tick.C:
		}
		if state, _, err := s.DomainGetState(probe, 0); err != nil || golibvirt.DomainState(state) != golibvirt.DomainRunning {
			out, _ := os.ReadFile(console)
			for _, m := range probeMarkers {
				if strings.Contains(string(out), m) {
					return TypeKVM, fmt.Sprintf("a test kernel (%s) booted under KVM in %.1f s", filepath.Base(kernel), time.Since(start).Seconds()), nil
				}
			}
			return TypeQEMU, "a test kernel stopped under KVM before it finished booting", nil
		}
	}
}

// newestKernel is the last /boot/vmlinuz-* in version order, or "".
func newestKernel(boot string) string {
	found, _ := filepath.Glob(filepath.Join(boot, "vmlinuz-*"))
	if len(found) == 0 {
		return ""
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[i], found[j]) })
	return found[len(found)-1]
}

// versionLess compares strings with their runs of digits as numbers.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		switch {
		case na >= 0 && nb >= 0:
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
		case a[0] != b[0]:
			return a[0] < b[0]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return len(a) < len(b)
}

func leadingNumber(s string) (int, string) {
	i := 0
	n := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 9 {
		n = n*10 + int(s[i]-'0')
		i++
	}
	if i == 0 {
		return -1, s
	}
	return n, s[i:]
}

func copyFile(from, to string, perm os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
