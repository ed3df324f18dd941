package vxlan

import (
	"net"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/net/nettest"
)

// BenchmarkGuestPair measures ping RTT and TCP throughput between two
// guests on one bridge and between two guests on two hosts joined by the
// VXLAN tunnel (hosts and guests are network namespaces; the underlay is a
// veth pair, so the difference is what VXLAN costs, not a wire).
func BenchmarkGuestPair(b *testing.B) {
	lab := newTunnelLab(b)
	lab.makeTunnels(b)
	pairs := []struct {
		name     string
		from, to string
		dst      net.IP
	}{
		{"bridge", lab.guestA, lab.guestC, lab.addrC},
		{"tunnel", lab.guestA, lab.guestB, lab.addrB},
	}
	for _, p := range pairs {
		if err := nettest.Ping(p.from, p.dst, 5*time.Second); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		b.Run(p.name+"/rtt", func(b *testing.B) {
			pinger, err := nettest.NewPinger(p.from, p.dst)
			if err != nil {
				b.Fatal(err)
			}
			defer pinger.Close()
			const n = 200
			var total time.Duration
			for b.Loop() {
				for range n {
					rtt, err := pinger.Echo(time.Second)
					if err != nil {
						b.Fatal(err)
					}
					total += rtt
				}
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N*n), "rtt-µs")
		})
		b.Run(p.name+"/tcp", func(b *testing.B) {
			const n = 256 << 20
			var rates float64
			for b.Loop() {
				rate, err := nettest.TCPThroughput(p.from, p.to, net.JoinHostPort(p.dst.String(), "5201"), n)
				if err != nil {
					b.Fatal(err)
				}
				rates += rate
			}
			b.ReportMetric(rates/float64(b.N)/1e6, "MB/s")
		})
	}
}
