package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/net/ovn"
	"github.com/testbedos/testbedos/internal/testenv"
)

// BenchmarkNetworkBackends measures the two network backends side by side,
// through the server: up and down of 200 netns guests on one switch, and
// between two guests on one switch, and two across a router, the ping RTT
// and TCP throughput. Metrics per backend:
//
//	up-ms, down-ms (200 guests), rtt-us, tcp-mbit (one switch),
//	routed-rtt-us, routed-tcp-mbit (across a router)
//
// The ovn backend's datapath is logged: the kernel's where the openvswitch
// module exists, else OVS's userspace datapath.
//
//	go test -run '^$' -bench NetworkBackends -benchtime 1x ./test/e2e/
func BenchmarkNetworkBackends(b *testing.B) {
	nettest.RequireRoot(b)
	for _, backend := range []string{"bridge", "ovn"} {
		b.Run("backend="+backend, func(b *testing.B) {
			if backend == "ovn" {
				if _, err := exec.LookPath("ovn-controller"); err != nil {
					testenv.Missing(b, "Open vSwitch and OVN are not installed")
				}
				b.Logf("ovn datapath: %s", map[bool]string{true: "kernel (openvswitch module)", false: "userspace (datapath_type=netdev)"}[ovn.KernelDatapath()])
			}
			s := startServer(b, "TESTBEDOS_NETWORK="+backend)
			up, down := benchUpDown(b, s, 200)
			rtt, rate := benchPair(b, s, pairLab, "10.127.0.11")
			rrtt, rrate := benchPair(b, s, routedPairLab, "10.127.1.11")
			b.ReportMetric(float64(up.Milliseconds()), "up-ms")
			b.ReportMetric(float64(down.Milliseconds()), "down-ms")
			b.ReportMetric(float64(rtt.Microseconds()), "rtt-us")
			b.ReportMetric(rate*8/1e6, "tcp-mbit")
			b.ReportMetric(float64(rrtt.Microseconds()), "routed-rtt-us")
			b.ReportMetric(rrate*8/1e6, "routed-tcp-mbit")
		})
	}
}

// benchLab makes a deployment of yaml and returns its name and a runner of
// its actions.
func benchLab(b *testing.B, s *server, yaml string) (string, func(api.CommandName) error) {
	ctx := context.Background()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	name := uniqueName("bkend")
	if _, err := s.c.CreateDeployment(ctx, name, dir); err != nil {
		b.Fatal(err)
	}
	run := func(c api.CommandName) error {
		id, err := s.c.Action(ctx, name, api.ActionRequest{Command: api.Command{Name: c}})
		if err != nil {
			return err
		}
		o, err := s.c.Follow(ctx, id, func(string) {})
		if err != nil {
			return err
		}
		if o.ErrorCode != 0 {
			return fmt.Errorf("%s failed: %+v", c, o)
		}
		return nil
	}
	if err := run(api.CmdGenerateArtefacts); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		run(api.CmdDown)
		nettest.RemoveAll(netnsPrefix(name))
	})
	return name, run
}

// benchUpDown times up and down of n netns guests on one switch.
func benchUpDown(b *testing.B, s *server, n int) (up, down time.Duration) {
	var y strings.Builder
	y.WriteString("machines:\n")
	for i := range n {
		fmt.Fprintf(&y, "  - name: g%d\n    network: [{switch: sw0, ip: 10.126.%d.%d}]\n", i, (i+2)>>8, (i+2)&0xff)
	}
	y.WriteString("network:\n  switches:\n    sw0: {subnet: 10.126.0.0/16}\n")
	_, run := benchLab(b, s, y.String())
	for _, step := range []struct {
		c api.CommandName
		d *time.Duration
	}{{api.CmdUp, &up}, {api.CmdDown, &down}} {
		start := time.Now()
		if err := run(step.c); err != nil {
			b.Fatal(err)
		}
		*step.d = time.Since(start)
		time.Sleep(300 * time.Millisecond)
	}
	return up, down
}

// pairLab is two guests on one switch; routedPairLab two guests on two
// switches joined by a router. p2's address is the last argument of
// benchPair.
const (
	pairLab = `machines:
  - name: p1
    network: [{switch: sw0, ip: 10.127.0.10}]
  - name: p2
    network: [{switch: sw0, ip: 10.127.0.11}]
network:
  switches:
    sw0: {subnet: 10.127.0.0/24}
`
	routedPairLab = `machines:
  - name: p1
    network: [{switch: sw0, ip: 10.127.0.10, gateway: 10.127.0.1}]
  - name: p2
    network: [{switch: sw1, ip: 10.127.1.11, gateway: 10.127.1.1}]
network:
  switches:
    sw0: {subnet: 10.127.0.0/24}
    sw1: {subnet: 10.127.1.0/24}
  routers:
    r1:
      ports:
        - {name: r1-sw0, switch: sw0, gateway_ip: 10.127.0.1/24}
        - {name: r1-sw1, switch: sw1, gateway_ip: 10.127.1.1/24}
`
)

// benchPair brings lab up, measures between its guests p1 and p2
// (measurePair) and brings it down.
func benchPair(b *testing.B, s *server, lab, p2Addr string) (time.Duration, float64) {
	name, run := benchLab(b, s, lab)
	if err := run(api.CmdUp); err != nil {
		b.Fatal(err)
	}
	rtt, rate := measurePair(b, netnsPrefix(name)+"p1", netnsPrefix(name)+"p2", p2Addr)
	if err := run(api.CmdDown); err != nil {
		b.Fatal(err)
	}
	return rtt, rate
}

// measurePair measures, from namespace p1 to namespace p2 holding p2Addr,
// the median ping RTT of 50 echoes and the TCP throughput of 256 MiB.
func measurePair(b *testing.B, p1, p2, p2Addr string) (time.Duration, float64) {
	if err := nettest.Ping(p1, net.ParseIP(p2Addr), 10*time.Second); err != nil {
		b.Fatal(err)
	}
	pinger, err := nettest.NewPinger(p1, net.ParseIP(p2Addr))
	if err != nil {
		b.Fatal(err)
	}
	defer pinger.Close()
	var rtts []time.Duration
	for range 50 {
		d, err := pinger.Echo(time.Second)
		if err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, d)
	}
	rate, err := nettest.TCPThroughput(p1, p2, p2Addr+":7300", 256<<20)
	if err != nil {
		b.Fatal(err)
	}
	return median(rtts), rate
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
