package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/cluster"
	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/tlsid"
)

const heartbeat = 300 * time.Millisecond

// testNet is a test bridge in this namespace holding the main's address,
// and client namespaces each with a veth to it.
type testNet struct {
	prefix, bridge, subnet string // subnet: "10.a.b"
}

// ipRun runs iproute2 to make the test network.
func ipRun(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	nettest.RequireRoot(t)
	b := make([]byte, 2)
	rand.Read(b)
	n := &testNet{prefix: nettest.Prefix(t), subnet: fmt.Sprintf("10.%d.%d", 100+int(b[0])%100, b[1])}
	n.bridge = n.prefix + "br"
	ipRun(t, "link", "add", n.bridge, "type", "bridge")
	ipRun(t, "addr", "add", n.mainIP()+"/24", "dev", n.bridge)
	ipRun(t, "link", "set", n.bridge, "up")
	// The hosts talk over this bridge (VXLAN between clients is forwarded
	// by it): let it pass a FORWARD policy of DROP, which dockerd sets.
	fw := bridge.NewFirewall(nil)
	if err := fw.AllowBridge(n.bridge); err != nil {
		t.Fatalf("firewall: %v", err)
	}
	t.Cleanup(func() {
		if err := fw.RemoveBridge(n.bridge); err != nil {
			t.Errorf("firewall: %v", err)
		}
	})
	return n
}

func (n *testNet) mainIP() string { return n.subnet + ".1" }

// addClient makes namespace <prefix>cN with a veth to the bridge holding
// <subnet>.(N+1); it returns the namespace and its address.
func (n *testNet) addClient(t testing.TB, i int) (ns, ip string) {
	t.Helper()
	ns, ip = fmt.Sprintf("%sc%d", n.prefix, i), fmt.Sprintf("%s.%d", n.subnet, i+1)
	host, peer := fmt.Sprintf("%sh%d", n.prefix, i), fmt.Sprintf("%sp%d", n.prefix, i)
	ipRun(t, "netns", "add", ns)
	ipRun(t, "link", "add", host, "type", "veth", "peer", "name", peer)
	ipRun(t, "link", "set", host, "master", n.bridge, "up")
	ipRun(t, "link", "set", peer, "netns", ns)
	ipRun(t, "-n", ns, "addr", "add", ip+"/24", "dev", peer)
	ipRun(t, "-n", ns, "link", "set", peer, "up")
	ipRun(t, "-n", ns, "link", "set", "lo", "up")
	return ns, ip
}

// clientServer prepares (does not start) a testbedos-server client in ns,
// with a host.json of its own name (the machine's host name is the main's).
func clientServer(t testing.TB, ns, name, ip string, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{dataDir: filepath.Join(dir, "data"), socket: filepath.Join(dir, "s.sock"), stderr: &lockedBuffer{}, netns: ns, args: args}
	s.env = append(os.Environ(),
		"GORACE=atexit_sleep_ms=0 halt_on_error=1",
		"TESTBEDOS_DATA_DIR="+s.dataDir, "TESTBEDOS_SOCKET="+s.socket,
		"TESTBEDOS_LISTEN="+ip+":3355", "TESTBEDOS_HEARTBEAT_INTERVAL="+heartbeat.String(),
	)
	host := api.HostConfig{Name: name, IP: ip, TestbedNIC: "eth0", CPUs: 1, MemoryMB: 256}
	data, _ := json.Marshal(host)
	if err := os.MkdirAll(filepath.Join(s.dataDir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dataDir, "config", "host.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// execServer is the server binary with args in s's environment (and namespace).
func execServer(s *server, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if s.netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", s.netns, bins.server}, args...)...)
	} else {
		cmd = exec.Command(bins.server, args...)
	}
	cmd.Env = s.env
	return cmd
}

// kill ends a server with SIGKILL, as a crash would.
func (s *server) kill(t testing.TB) {
	t.Helper()
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// events collects the main's /api/events.
func events(t testing.TB, c *client.Client) <-chan api.Event {
	ch := make(chan api.Event, 64)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go c.Events(ctx, func(e api.Event, _ json.RawMessage) error {
		select {
		case ch <- e:
		default:
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // subscribed before anything happens
	return ch
}

func waitEvent(t testing.TB, ch <-chan api.Event, typ api.EventType, member string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		select {
		case e := <-ch:
			if e.Type == typ && e.Member == member {
				return time.Since(start)
			}
		case <-deadline:
			t.Fatalf("no %s of %s within %s", typ, member, within)
		}
	}
}

func members(t testing.TB, c *client.Client) map[string]api.Member {
	t.Helper()
	list, err := c.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]api.Member{}
	for _, m := range list {
		out[m.Name] = m
	}
	return out
}

func TestClusterJoinHeartbeatsAndRejoin(t *testing.T) {
	n := newTestNet(t)
	main := startServer(t, "TESTBEDOS_LISTEN="+n.mainIP()+":3355", "TESTBEDOS_HEARTBEAT_INTERVAL="+heartbeat.String())
	st, err := main.c.Status(context.Background())
	if err != nil || !st.TLS || st.Fingerprint == "" {
		t.Fatalf("main status: %+v %v: off loopback the main speaks TLS", st, err)
	}
	token := joinToken(t, main)
	jt, err := cluster.ParseJoinToken(token)
	if err != nil || jt.MainURL != "https://"+n.mainIP()+":3355" || jt.Fingerprint != st.Fingerprint {
		t.Fatalf("join token %q: %+v %v", token, jt, err)
	}

	// The main answers no plain HTTP off loopback, and the cluster token
	// opens the join only.
	if resp, err := http.Get("http://" + n.mainIP() + ":3355/api/config/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the main: %d", resp.StatusCode)
		}
	}
	withCluster, err := client.New(jt.MainURL, client.WithFingerprint(jt.Fingerprint), client.WithToken(jt.ClusterToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withCluster.Deployments(context.Background()); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("the cluster token lists deployments: %v, want 401", err)
	}
	wrongToken := cluster.JoinToken{MainURL: jt.MainURL, ClusterToken: "not-the-cluster-token", Fingerprint: jt.Fingerprint}
	otherMain := cluster.JoinToken{MainURL: jt.MainURL, ClusterToken: jt.ClusterToken, Fingerprint: "sha256:" + strings.Repeat("0", 64)}

	ev := events(t, main.c)
	ns, ip := n.addClient(t, 1)

	// Refused joins: the client exits with a clear error and saves no mode.
	for what, tok := range map[string]cluster.JoinToken{"wrong cluster token": wrongToken, "other main": otherMain} {
		bad := clientServer(t, ns, "c1", ip, "client", "--join", tok.String())
		out, err := execServer(bad, bad.args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("%s: the client did not fail: %v\n%s", what, err, out)
		}
		want := map[string]string{"wrong cluster token": "refused the cluster token", "other main": "fingerprint"}[what]
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: the error does not say %q:\n%s", what, want, out)
		}
		if _, err := os.Stat(filepath.Join(bad.dataDir, "config", "mode.json")); err == nil {
			t.Errorf("%s: mode.json written by a client that did not join", what)
		}
	}
	if len(members(t, main.c)) != 0 {
		t.Fatal("a refused client is a member")
	}

	// Join by token.
	c1 := clientServer(t, ns, "c1", ip, "client", "--join", token)
	c1.start(t)
	waitEvent(t, ev, api.EventMemberJoined, "c1", 10*time.Second)
	m, ok := members(t, main.c)["c1"]
	if !ok || m.URL != "https://"+ip+":3355" || m.Host.IP != ip {
		t.Fatalf("c1 after joining: %+v", m)
	}
	cfgFile, err := os.ReadFile(filepath.Join(main.dataDir, "config", "kvm-compose-config.json"))
	if err != nil || !strings.Contains(string(cfgFile), `"c1"`) {
		t.Fatalf("kvm-compose-config.json: %v\n%s", err, cfgFile)
	}
	clientCert, err := tlsid.LoadCertificate(filepath.Join(c1.dataDir, "config", "tls", "cert.pem"))
	if err != nil || tlsid.Fingerprint(clientCert) != m.Fingerprint {
		t.Fatalf("the main pinned %s, the client's certificate is another (%v)", m.Fingerprint, err)
	}
	mode, _ := os.ReadFile(filepath.Join(c1.dataDir, "config", "mode.json"))
	if !strings.Contains(string(mode), `"client"`) || !strings.Contains(string(mode), jt.Fingerprint) {
		t.Errorf("client mode.json: %s", mode)
	}
	// Heartbeats arrive: a new one after this mark, however late the
	// timers of a loaded machine fire, and none missed.
	mark := time.Now()
	for deadline := time.Now().Add(30 * heartbeat); ; time.Sleep(heartbeat / 3) {
		m := members(t, main.c)["c1"]
		if m.LastHeartbeat != nil && m.LastHeartbeat.After(mark) && m.Misses == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("heartbeats of c1: %+v", m)
			break
		}
	}
	status := exec.Command(bins.cli, "cluster", "status", "--server-connection", "unix://"+main.socket)
	status.Env = main.env
	if out, err := status.CombinedOutput(); err != nil || !strings.Contains(string(out), "c1") || !strings.Contains(string(out), ip) {
		t.Errorf("kvm-compose cluster status: %v\n%s", err, out)
	}

	// Kill the client: removed within 3 intervals, member-lost published.
	c1.kill(t)
	took := waitEvent(t, ev, api.EventMemberLost, "c1", 30*heartbeat)
	t.Logf("killed client removed after %s (interval %s, misses 3)", took, heartbeat)
	// 3 intervals, and room for the timers and checks of a loaded machine
	// (the cluster package's test counts the misses exactly): a member is
	// dropped in seconds, never left for minutes.
	if took > 10*heartbeat {
		t.Errorf("removed after %s, want within about 3 intervals (%s)", took, 3*heartbeat)
	}
	if _, ok := members(t, main.c)["c1"]; ok {
		t.Error("the lost member is still listed")
	}

	// Restart it with no mode: it joins again by itself.
	c1.args = []string{}
	c1.start(t)
	waitEvent(t, ev, api.EventMemberJoined, "c1", 10*time.Second)
	if _, ok := members(t, main.c)["c1"]; !ok {
		t.Error("the restarted client is not a member")
	}
	// A client serves the agent API, nothing of the main's.
	if _, err := c1.c.Deployments(context.Background()); client.StatusOf(err) != http.StatusNotFound {
		t.Errorf("a client lists deployments: %v, want 404", err)
	}

	// A second client joins with the parts of a join token one by one.
	ns2, ip2 := n.addClient(t, 2)
	tokenFile := filepath.Join(t.TempDir(), "cluster-token")
	if err := os.WriteFile(tokenFile, []byte(jt.ClusterToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := clientServer(t, ns2, "c2", ip2, "client", "--main", jt.MainURL, "--token-file", tokenFile, "--main-fingerprint", jt.Fingerprint)
	c2.start(t)
	waitEvent(t, ev, api.EventMemberJoined, "c2", 10*time.Second)
	if got := metric(t, main, "testbedos_cluster_members"); got != "3" {
		t.Errorf("testbedos_cluster_members %s, want 3", got)
	}

	// Removed by the main (it answers 404), a running client joins again.
	if err := main.c.RemoveMember(context.Background(), "c2"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, api.EventMemberLeft, "c2", time.Second)
	waitEvent(t, ev, api.EventMemberJoined, "c2", 3*heartbeat)

	// Restart the main: the clients stay members and heart-beat again.
	main.stop(t)
	main.start(t)
	restarted := time.Now()
	deadline := time.Now().Add(10 * heartbeat)
	for {
		ms := members(t, main.c)
		if m1, m2 := ms["c1"], ms["c2"]; m1.LastHeartbeat != nil && m2.LastHeartbeat != nil &&
			m1.LastHeartbeat.After(restarted) && m2.LastHeartbeat.After(restarted) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a restart of the main its clients do not answer heartbeats: %+v", ms)
		}
		time.Sleep(heartbeat / 3)
	}
}

// metric reads one unlabelled series of the server's /metrics.
func metric(t testing.TB, s *server, name string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", s.socket)
	}}}
	resp, err := hc.Get("http://unix/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}
