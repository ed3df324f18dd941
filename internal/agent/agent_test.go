package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// cluster is the main's view of a main and one client host.
type cluster struct {
	main   engine.Host
	remote *agent.RemoteHost
}

func (c cluster) List() []topology.Host {
	return []topology.Host{{Name: c.main.Name(), Main: true}, {Name: c.remote.Name()}}
}

func (c cluster) Host(name string) (engine.Host, error) {
	switch name {
	case c.main.Name():
		return c.main, nil
	case c.remote.Name():
		return c.remote, nil
	}
	return nil, fmt.Errorf("no host %s", name)
}

// counter counts the agent calls by method and path prefix.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + strings.TrimPrefix(r.URL.Path, agent.Prefix)
		if i := strings.Index(key, "/"); i >= 0 {
			key = key[:i]
		}
		c.mu.Lock()
		c.n[key]++
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

const twoGuests = `machines:
  - name: a
    host: %[1]s
    network: [{switch: sw0, ip: 10.77.0.1}]
    netns: {setup_script: setup.sh}
  - name: b
    host: %[1]s
    network: [{switch: sw0, ip: 10.77.0.2}]
    netns: {setup_script: setup.sh}
network:
  switches:
    sw0: {subnet: 10.77.0.0/24}
`

const setupScript = `#!/bin/sh
echo "hello from $TESTBEDOS_GUEST of $TESTBEDOS_DEPLOYMENT"
ip -o -4 addr show dev eth0 | grep -q 10.77.0. && echo "address ok"
peer=10.77.0.1; [ "$TESTBEDOS_GUEST" = a ] && peer=10.77.0.2
for i in 1 2 3 4 5; do ping -c 1 -W 2 $peer >/dev/null && { echo "reached $peer"; break; }; done
`

// TestEngineDrivesClientHost runs the agent API with the real netns driver
// and hostnet behind an HTTP server, and the engine on the main with a
// RemoteHost pointed at it: up makes the guests on the client, pushes the
// setup script once, carries its output into the main's log with the
// host's prefix; down removes everything; the client's own record can clean
// after the main lost its.
func TestEngineDrivesClientHost(t *testing.T) {
	nettest.RequireRoot(t)
	ctx := context.Background()
	raw := make([]byte, 3)
	_, _ = rand.Read(raw)
	name := "ag" + hex.EncodeToString(raw)
	t.Cleanup(func() { nettest.RemoveAll("tbos." + name + ".") })

	drivers := guest.NewRegistry(netns.New(netns.Options{}))
	clientData := t.TempDir()
	calls := &counter{n: map[string]int{}}
	const secret = "member-secret"
	srv := httptest.NewServer(calls.wrap(agent.RequireSecret(secret)(agent.Handler(agent.Options{
		Name: "host2", DataDir: clientData, Drivers: drivers, Network: hostnet.NewHost(nil),
	}))))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "host2", BaseURL: srv.URL, Secret: secret, Client: srv.Client(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hosts := cluster{main: &engine.LocalHost{HostName: "main", Net: hostnet.NewHost(nil), Drivers: drivers}, remote: remote}
	e := engine.New(engine.Options{Hosts: hosts})

	dir := t.TempDir()
	write(t, filepath.Join(dir, "kvm-compose.yaml"), fmt.Sprintf(twoGuests, "host2"), 0o644)
	write(t, filepath.Join(dir, "setup.sh"), setupScript, 0o755)
	d := api.Deployment{Name: name, ProjectLocation: dir}
	log := &guesttest.Log{T: t}
	if err := e.GenerateArtefacts(ctx, d, log); err != nil {
		t.Fatal(err)
	}
	st, err := topology.ReadState(topology.StatePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Down(context.Background(), d, &guesttest.Log{})
		nettest.RemoveAll(st.Prefix)
	})
	for _, g := range st.Guests {
		if g.Host != "host2" {
			t.Fatalf("guest %s placed on %q, want host2", g.Name, g.Host)
		}
	}

	// First up: the guests are made on the client, the script sent once.
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatalf("up: %v\n%s", err, log.Text())
	}
	assertNamespaces(t, st, true)
	text := log.Text()
	for _, g := range []string{"a", "b"} {
		want := fmt.Sprintf("[host2] [%s] hello from %s of %s", g, g, name)
		if !strings.Contains(text, want) {
			t.Errorf("main's log lacks %q:\n%s", want, text)
		}
		for _, want := range []string{"address ok", "reached 10.77.0."} {
			if want := fmt.Sprintf("[host2] [%s] %s", g, want); !strings.Contains(text, want) {
				t.Errorf("main's log lacks %q", want)
			}
		}
	}
	if n := calls.get("PUT files"); n != 1 {
		t.Errorf("first up sent the script %d times, want 1 (two guests share it)", n)
	}
	if names, err := remote.Deployments(ctx); err != nil || len(names) != 1 || names[0] != name {
		t.Errorf("client's deployments: %v, %v; want [%s]", names, err, name)
	}
	rec, err := remote.Deployed(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Guests) != 2 || len(rec.Bridges) != 1 {
		t.Errorf("client's record after up: %+v, want 2 guests and 1 bridge", rec)
	}
	for _, b := range rec.Bridges {
		if !b.Made || !b.Firewall {
			t.Errorf("client's record of the bridge: %+v, want made with firewall rules", b)
		}
	}

	// Down through the agent removes it all, and the client's record.
	if err := e.Down(ctx, d, log); err != nil {
		t.Fatalf("down: %v\n%s", err, log.Text())
	}
	assertNamespaces(t, st, false)
	assertNoLeftovers(t, st.Prefix)
	assertRecordEmpty(t, remote, name)

	// Second up: the client has the script; nothing is sent again.
	heads := calls.get("HEAD files")
	if err := e.Up(ctx, d, api.UpOptions{}, log); err != nil {
		t.Fatalf("second up: %v\n%s", err, log.Text())
	}
	if n := calls.get("PUT files"); n != 1 {
		t.Errorf("after the second up the script was sent %d times, want 1", n)
	}
	if calls.get("HEAD files") <= heads {
		t.Errorf("second up asked the client nothing about the script")
	}
	assertNamespaces(t, st, true)

	// The main loses its record: the client cleans by its own.
	if err := remote.Clean(ctx, name, log); err != nil {
		t.Fatalf("clean: %v\n%s", err, log.Text())
	}
	assertNamespaces(t, st, false)
	assertNoLeftovers(t, st.Prefix)
	assertRecordEmpty(t, remote, name)
	if !strings.Contains(log.Text(), "[host2] guest a: removed") {
		t.Errorf("clean's lines are not in the log with the host's prefix:\n%s", log.Text())
	}
	if names, err := remote.Deployments(ctx); err != nil || len(names) != 0 {
		t.Errorf("client's deployments after clean: %v, %v", names, err)
	}
	entries, _ := os.ReadDir(filepath.Join(clientData, "agent"))
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".json") {
			t.Errorf("client record file %s left after clean", en.Name())
		}
	}
}

func write(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func assertNamespaces(t *testing.T, st *topology.State, want bool) {
	t.Helper()
	for _, g := range st.Guests {
		_, err := os.Stat(filepath.Join(nettest.RunDir, g.Netns.Namespace))
		if got := err == nil; got != want {
			t.Errorf("namespace of %s exists: %v, want %v (%v)", g.Name, got, want, err)
		}
	}
}

func assertNoLeftovers(t *testing.T, prefix string) {
	t.Helper()
	var links, namespaces []string
	for range 100 {
		var err error
		if links, namespaces, err = nettest.Leftovers(prefix); err != nil {
			t.Fatal(err)
		}
		if len(links)+len(namespaces) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("left behind: links %v, namespaces %v", links, namespaces)
}

func assertRecordEmpty(t *testing.T, remote *agent.RemoteHost, name string) {
	t.Helper()
	rec, err := remote.Deployed(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Empty() {
		t.Errorf("client's record not empty: %+v", rec)
	}
}
