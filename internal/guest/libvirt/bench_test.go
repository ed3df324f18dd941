package libvirt_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/test/guestimage"
)

// BenchmarkUpVMs times up through the whole engine for N kernel-boot VMs of
// the test image on one switch, until every guest answers over SSH (up
// returns only then), next to the floor: N bare qemu-system-x86_64
// processes booting the same kernel and initramfs with the same accelerator
// until each prints its ready line (the line the driver waits for before it
// dials SSH). Both run in the same iteration, so the machine's load is
// shared; x-of-bare-qemu is the ratio. Down runs untimed.
//
//	go test -run '^$' -bench UpVMs -benchtime 1x ./internal/guest/libvirt/
func BenchmarkUpVMs(b *testing.B) {
	libvirttest.Require(b)
	img := testImage(b)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("VMs=%d", n), func(b *testing.B) {
			var yaml strings.Builder
			yaml.WriteString("machines:\n")
			for i := 1; i <= n; i++ {
				fmt.Fprintf(&yaml, `  - name: vm%d
    network: [{switch: sw0, ip: 10.0.0.%d}]
    libvirt:
      cpus: 1
      memory_mb: 128
      libvirt_type: {kernel: {kernel: vmlinux, initrd: initrd.gz}}
`, i, 10+i)
			}
			yaml.WriteString("network:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\n")
			dir := vmProject(b, img, yaml.String(), map[string]string{})
			w := newWorld(b, dir, "lvb", libvirt.Options{})
			w.log.T = nil
			ctx := libvirttest.Context(b)
			if err := w.e.GenerateArtefacts(ctx, w.d, w.log); err != nil {
				b.Fatal(err)
			}
			domType, err := w.drv.DomainType(ctx, w.log)
			if err != nil {
				b.Fatal(err)
			}
			accel := "tcg"
			if domType == libvirt.TypeKVM {
				accel = "kvm"
			}
			var ours, bare time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
					b.Fatalf("up: %v\n%s", err, w.log.Text())
				}
				ours += time.Since(start)
				b.StopTimer()
				if err := w.e.Down(ctx, w.d, w.log); err != nil {
					b.Fatalf("down: %v", err)
				}
				took, err := bareBoot(ctx, b, qemu, accel, img, filepath.Join(dir, "vmlinux"), n)
				if err != nil {
					b.Fatal(err)
				}
				bare += took
				b.StartTimer()
			}
			per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
			b.ReportMetric(per(ours), "s-to-ssh")
			b.ReportMetric(per(bare), "bare-qemu-s-to-ready")
			b.ReportMetric(per(ours)/per(bare), "x-of-bare-qemu")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: up of %d VM(s) until all answer over SSH: %.1f s; bare qemu to the ready line: %.1f s (%.2fx)",
				domType, n, per(ours), per(bare), per(ours)/per(bare))
		})
	}
}

// bareBoot starts n qemu processes at once, each booting kernel and the
// image's initramfs with 128 MiB and one vCPU like the benchmark's guests,
// and returns when every one has printed its ready line.
func bareBoot(ctx context.Context, b *testing.B, qemu, accel string, img *guestimage.Image, kernel string, n int) (time.Duration, error) {
	_, authLine, err := guestimage.GenerateKey()
	if err != nil {
		return 0, err
	}
	dir := b.TempDir()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		last time.Time // when the last ready line appeared
	)
	start := time.Now()
	for i := range n {
		params := guestimage.Params{
			IP:             netip.MustParsePrefix(fmt.Sprintf("10.0.0.%d/24", 10+i)),
			Hostname:       fmt.Sprintf("bare%d", i),
			AuthorizedKeys: []string{authLine},
		}
		cmdline, err := params.Cmdline()
		if err != nil {
			return 0, err
		}
		console := filepath.Join(dir, fmt.Sprintf("console-%d.log", i))
		cmd := exec.Command(qemu,
			"-accel", accel, "-m", "128", "-smp", "1",
			"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
			"-serial", "file:"+console,
			"-kernel", kernel, "-initrd", img.Initrd, "-append", cmdline,
			// A NIC with nothing behind it: the guest configures eth0
			// as under libvirt, and no packet leaves the machine.
			"-netdev", "socket,id=n0,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
			"-device", "virtio-net-pci,netdev=n0",
			"-device", "virtio-rng-pci",
		)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			_, err := guestimage.WaitReady(wctx, console)
			at := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				data, _ := os.ReadFile(console)
				errs = append(errs, fmt.Errorf("bare qemu %d: %w\n%s", i, err, data))
			}
			if at.After(last) {
				last = at
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, errs[0]
	}
	return last.Sub(start), nil
}
