package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/config"
)

// connEnv is a server on a loopback port and a unix socket.
type connEnv struct {
	srv  *Server
	tcp  *limitListener
	addr string
	sock *http.Client
}

func startConnEnv(t testing.TB, maxConns int) *connEnv {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "tbconn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", Socket: filepath.Join(sockDir, "api.sock"),
		DB: "file", Auth: true, HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
		MaxConns: maxConns,
	}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	s.bodyTimeout = 2 * time.Second
	ls, stop, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	sock := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", cfg.Socket)
	}}}
	return &connEnv{srv: s, tcp: ls[0].(*limitListener), addr: ls[0].Addr().String(), sock: sock}
}

// holdIdle opens n connections to addr that each ask for /healthz once and
// then stay open without reading, like a client that keeps connections
// alive and forgets them; it returns them (the caller closes them).
func holdIdle(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"))
		conns = append(conns, c)
	}
	return conns
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// healthz asks /healthz on a new connection and reports how long it took.
func healthz(t testing.TB, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	return time.Since(start)
}

// TestIdleConnectionsAreCapped: 600 kept-alive connections left idle
// against a cap of 50 leave the server with at most 50 open (it closes the
// longest idle ones to make room), /healthz over TCP still answers, and so
// does the unix socket, which has a cap of its own.
func TestIdleConnectionsAreCapped(t *testing.T) {
	const held, max = 600, 50
	e := startConnEnv(t, max)
	before := openFDs()
	conns := holdIdle(t, e.addr, held)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	if took := healthz(t, e.addr); took > 2*time.Second {
		t.Errorf("/healthz under %d idle connections took %v", held, took)
	}
	resp, err := e.sock.Get("http://testbedos/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("unix socket under %d idle TCP connections: %v %v", held, resp, err)
	}
	resp.Body.Close()
	if n := e.tcp.open(); n > max {
		t.Errorf("%d connections open, the cap is %d", n, max)
	}
	// The test's own ends of the connections are fds of this process too;
	// the server's ends past the cap are closed.
	if grown := openFDs() - before; grown > held+max+20 {
		t.Errorf("%d file descriptors more after %d idle connections: the server holds more than its cap of %d", grown, held, max)
	}
}

// TestSlowBodyIsDropped: a request whose body trickles in a byte at a time
// gets its 401 at once (credentials are checked before the body is read),
// and the connection is closed when the body's deadline passes; with the
// token, the same slow body ends the connection within the deadline too.
func TestSlowBodyIsDropped(t *testing.T) {
	e := startConnEnv(t, 0)
	token, _ := os.ReadFile(e.srv.cfg.TokenPath())
	for _, auth := range []string{"", "Authorization: Bearer " + strings.TrimSpace(string(token)) + "\r\n"} {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprintf(c, "POST /api/deployments HTTP/1.1\r\nHost: localhost\r\n%sContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", auth)
		stop := make(chan struct{})
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		status, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("auth %v: no answer: %v", auth != "", err)
		}
		// Before the body's deadline: a server that read the body first
		// would answer (if at all) only once it passed.
		if auth == "" && (!strings.Contains(status, "401") || time.Since(start) >= e.srv.bodyTimeout) {
			t.Errorf("without credentials: %q after %v, want a 401 at once", strings.TrimSpace(status), time.Since(start))
		}
		for {
			if _, err := br.ReadByte(); err != nil {
				break
			}
		}
		close(stop)
		if took := time.Since(start); took > e.srv.bodyTimeout+2*time.Second {
			t.Errorf("auth %v: the slow body held the connection %v (body deadline %v)", auth != "", took, e.srv.bodyTimeout)
		}
	}
}

// BenchmarkIdleConnections holds 2,000 idle keep-alive connections against
// the default cap and measures /healthz on a new connection meanwhile; it
// reports the connections the server keeps open, the file descriptors and
// the resident memory of the process (the benchmark's own client ends
// included).
func BenchmarkIdleConnections(b *testing.B) {
	const held = 2000
	e := startConnEnv(b, 0)
	conns := holdIdle(b, e.addr, held)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(200 * time.Millisecond)
	var worst time.Duration
	b.ResetTimer()
	for b.Loop() {
		worst = max(worst, healthz(b, e.addr))
	}
	b.StopTimer()
	b.ReportMetric(float64(held), "idle_conns_sent")
	b.ReportMetric(float64(e.tcp.open()), "server_conns_open")
	b.ReportMetric(float64(worst.Microseconds())/1000, "healthz_worst_ms")
	b.ReportMetric(float64(openFDs()), "fds")
	b.ReportMetric(float64(rssKB())/1024, "rss_MB")
}

func rssKB() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}
