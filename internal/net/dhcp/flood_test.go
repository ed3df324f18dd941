package dhcp

import (
	"context"
	"log/slog"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// bigPool is a /10 whose exclude_ips range covers all but a few dozen
// addresses at either end.
var bigPool = topology.DHCPPool{
	Switch: "s", IfName: "p0", Gateway: "10.64.0.1", Subnet: "10.64.0.0/10",
	ExcludeFrom: "10.64.0.10", ExcludeTo: "10.127.255.200",
}

// An exclude range over a /10 (4 million addresses) costs no memory in
// proportion to it, and the pool leases around it.
func TestDHCPExcludeRangeIsNotMaterialised(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	lp, err := newLeasePool(bigPool, nil)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("a pool with a /10 exclude range allocated %d bytes, want < 1 MiB", got)
	}
	c := &replies{}
	var got []string
	for i := range 10 {
		if r := discover(t, lp, c, macOf(i)); r != nil {
			got = append(got, r.YourIPAddr.String())
		}
	}
	want := []string{"10.64.0.2", "10.64.0.3", "10.64.0.4", "10.64.0.5", "10.64.0.6", "10.64.0.7",
		"10.64.0.8", "10.64.0.9", "10.127.255.201", "10.127.255.202"}
	if len(got) != len(want) {
		t.Fatalf("offers %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("offers %v, want %v", got, want)
		}
	}
}

// Once a large pool is full, a DISCOVER from yet another MAC costs a few
// map lookups, not a walk over the subnet: thousands are answered (with
// silence) in well under a second.
func TestDHCPFullPoolCostsLittlePerPacket(t *testing.T) {
	lp, err := newLeasePool(bigPool, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &replies{}
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for i := range 5000 {
			m, _ := dhcpv4.NewDiscovery(macOf(i))
			lp.handle(c, &net.UDPAddr{IP: net.IPv4bcast, Port: 68}, m)
		}
		done <- time.Since(start)
	}()
	select {
	case took := <-done:
		t.Logf("5000 DISCOVERs into a pool of %d addresses: %s", len(c.got), took)
	case <-time.After(10 * time.Second):
		t.Fatal("5000 DISCOVERs into a full pool took over 10 s")
	}
}

// A guest flooding DISCOVERs from random MACs: once Stop returns, the
// server has left no goroutine, no socket and no work behind.
func TestDHCPStopEndsAFloodedServer(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	rns, gns := prefix+"r", prefix+"g"
	nettest.AddNamespace(t, rns)
	nettest.AddNamespace(t, gns)
	if err := nettest.InNamespace(rns, func() error {
		if err := nettest.AddVethTo(gns, "p0", "eth0", "", 0); err != nil {
			return err
		}
		return nettest.SetAddrUp("p0", "10.64.0.1/10")
	}); err != nil {
		t.Fatal(err)
	}
	if err := nettest.InNamespace(gns, func() error { return nettest.SetAddrUp("eth0", "10.64.0.250/10") }); err != nil {
		t.Fatal(err)
	}
	// The flood's socket, made in the guest, bound to its link.
	var flood *net.UDPConn
	if err := nettest.InNamespace(gns, func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
				if serr == nil {
					serr = unix.BindToDevice(int(fd), "eth0")
				}
			})
			if err != nil {
				return err
			}
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", ":0")
		if err == nil {
			flood = pc.(*net.UDPConn)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer flood.Close()

	runtime.GC()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	var s Servers
	r := topology.Router{Name: "r", Namespace: rns, DHCP: []topology.DHCPPool{bigPool}}
	if err := s.Serve(r, nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	stopFlood := make(chan struct{})
	flooded := make(chan int)
	go func() {
		n := 0
		defer func() { flooded <- n }()
		dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
		for i := 0; ; i++ {
			select {
			case <-stopFlood:
				return
			default:
			}
			m, _ := dhcpv4.NewDiscovery(macOf(i))
			if _, err := flood.WriteTo(m.ToBytes(), dst); err == nil {
				n++
			}
		}
	}()
	time.Sleep(time.Second)
	s.Stop(rns)
	close(stopFlood)
	t.Logf("%d DISCOVERs sent", <-flooded)

	if s.Serving(rns, "p0") {
		t.Error("still serving after Stop")
	}
	// Nothing of the server is left: goroutines and descriptors are back
	// where they were (the flood's socket was opened before counting).
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Stop, %d before Serve:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := openFDs(t); n > fds {
		t.Errorf("%d open descriptors after Stop, %d before Serve", n, fds)
	}
	// And the process is idle: no work queued by the flood goes on.
	cpu := cpuTime(t)
	time.Sleep(500 * time.Millisecond)
	// Half a core: work that goes on takes all of one.
	if used := cpuTime(t) - cpu; used > 250*time.Millisecond {
		t.Errorf("the process used %s of CPU in the 500 ms after Stop", used)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
