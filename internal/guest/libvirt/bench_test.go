package libvirt_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
)

// BenchmarkUpVMs times up through the whole engine for N kernel-boot VMs of
// the test image on one switch, until every guest answers over SSH (up
// returns only then). The domain type is detected once before timing; on
// hosts where KVM does not run guests that is TCG. Down runs untimed.
//
//	go test -run '^$' -bench UpVMs -benchtime 1x ./internal/guest/libvirt/
func BenchmarkUpVMs(b *testing.B) {
	libvirttest.Require(b)
	img := testImage(b)
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
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := w.e.Up(ctx, w.d, api.UpOptions{}, w.log); err != nil {
					b.Fatalf("up: %v\n%s", err, w.log.Text())
				}
				total += time.Since(start)
				b.StopTimer()
				if err := w.e.Down(ctx, w.d, w.log); err != nil {
					b.Fatalf("down: %v", err)
				}
				b.StartTimer()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-ssh")
			b.ReportMetric(0, "ns/op")
			b.Logf("domain type %s: up of %d VM(s) until all answer over SSH: %.1f s on average", domType, n, total.Seconds()/float64(b.N))
		})
	}
}
