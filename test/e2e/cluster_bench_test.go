package e2e

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/cluster"
)

var (
	clusterClients  = flag.Int("cluster-clients", 30, "client hosts (namespaces) of BenchmarkClusterHeartbeats")
	clusterDuration = flag.Duration("cluster-duration", 60*time.Second, "how long BenchmarkClusterHeartbeats keeps them joined")
	clusterInterval = flag.Duration("cluster-interval", time.Second, "heartbeat interval of BenchmarkClusterHeartbeats")
)

// BenchmarkClusterHeartbeats joins -cluster-clients client servers, each in
// its own namespace, to one main, keeps them for -cluster-duration and
// reports the main's CPU and memory for the heart-beats both ways, then
// kills one client and reports how long the main took to drop it.
//
//	go test -run '^$' -bench ClusterHeartbeats -benchtime 1x ./test/e2e/
func BenchmarkClusterHeartbeats(b *testing.B) {
	for range b.N {
		n := newTestNet(b)
		iv := "TESTBEDOS_HEARTBEAT_INTERVAL=" + clusterInterval.String()
		main := startServer(b, "TESTBEDOS_LISTEN="+n.mainIP()+":3355", iv)
		jt := joinToken(b, main)
		ev := events(b, main.c)
		clients := make([]*server, *clusterClients)
		for i := range clients {
			ns, ip := n.addClient(b, i+1)
			c := clientServer(b, ns, fmt.Sprintf("c%d", i+1), ip, "client", "--join", jt)
			c.env = append(c.env, iv)
			c.start(b)
			clients[i] = c
		}
		for i := range clients {
			waitEvent(b, ev, api.EventMemberJoined, fmt.Sprintf("c%d", i+1), 30*time.Second)
		}
		pid := main.cmd.Process.Pid
		cpu0, start := cpuSeconds(b, pid), time.Now()
		b.ResetTimer()
		time.Sleep(*clusterDuration)
		b.StopTimer()
		cpu := cpuSeconds(b, pid) - cpu0
		took := time.Since(start)
		ms := members(b, main.c)
		missed := 0
		for _, m := range ms {
			missed += m.Misses
		}
		if len(ms) != len(clients) {
			b.Errorf("%d members after %s, want %d", len(ms), took, len(clients))
		}
		clients[0].kill(b)
		detect := waitEvent(b, ev, api.EventMemberLost, "c1", 10**clusterInterval)

		b.ReportMetric(float64(len(clients)), "clients")
		b.ReportMetric(100*cpu/took.Seconds(), "main-cpu-%")
		b.ReportMetric(float64(status(b, pid, "VmRSS")), "main-rss-KiB")
		b.ReportMetric(float64(status(b, pid, "VmHWM")), "main-peak-rss-KiB")
		b.ReportMetric(float64(missed), "misses")
		b.ReportMetric(detect.Seconds(), "detect-s")
		b.ReportMetric(detect.Seconds()/clusterInterval.Seconds(), "detect-intervals")
		for _, c := range clients {
			c.stop(b)
		}
	}
}

// joinToken runs `testbedos-server join-token` for the main.
func joinToken(t testing.TB, main *server) string {
	t.Helper()
	cmd := execServer(main, "join-token")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("join-token: %v", err)
	}
	token := strings.TrimSpace(string(out))
	if _, err := cluster.ParseJoinToken(token); err != nil {
		t.Fatal(err)
	}
	return token
}

// cpuSeconds is the user and system CPU time of process pid so far.
func cpuSeconds(t testing.TB, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// status is a kB value of /proc/<pid>/status.
func status(t testing.TB, pid int, key string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
