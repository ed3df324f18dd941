package agent_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// fakeNet is a hand-written host network: bridges and firewall rules.
type fakeNet struct {
	mu      sync.Mutex
	bridges map[string]bool
	allowed map[string]bool
}

func (n *fakeNet) HasBridge(ctx context.Context, name string) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bridges[name], nil
}
func (n *fakeNet) EnsureBridge(ctx context.Context, name string) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	made := !n.bridges[name]
	n.bridges[name] = true
	return made, nil
}
func (n *fakeNet) DeleteBridge(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.bridges, name)
	return nil
}
func (n *fakeNet) AllowBridge(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.allowed[name] = true
	return nil
}
func (n *fakeNet) RemoveBridge(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.allowed, name)
	return nil
}

func (n *fakeNet) state() (bridges, allowed []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for b := range n.bridges {
		bridges = append(bridges, b)
	}
	for b := range n.allowed {
		allowed = append(allowed, b)
	}
	sort.Strings(bridges)
	sort.Strings(allowed)
	return bridges, allowed
}

// TestCleanAfterAgentRestart: the client's record outlives the agent; a new
// agent on the same data folder cleans a deployment from it alone, leaving
// a bridge that was there before and one another deployment's guest uses.
func TestCleanAfterAgentRestart(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	drv := &fakeDriver{guests: map[string]bool{}}
	net := &fakeNet{bridges: map[string]bool{"br-old": true}, allowed: map[string]bool{}}
	start := func() *agent.RemoteHost {
		srv := httptest.NewServer(agent.Handler(agent.Options{Name: "c1", DataDir: data, Drivers: guest.NewRegistry(drv), Network: net}))
		t.Cleanup(srv.Close)
		remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Client: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return remote
	}
	remote := start()
	for _, b := range []string{"br-a", "br-old", "br-shared"} {
		if _, err := remote.Network().EnsureBridge(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := remote.Network().AllowBridge(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	create := func(dep, name string, bridges ...string) {
		g := &topology.Guest{Name: name, Kind: topology.KindNetns}
		for _, b := range bridges {
			g.Interfaces = append(g.Interfaces, topology.Interface{Bridge: b})
		}
		if _, err := proxy.Create(ctx, guest.Deployment{Name: dep, Files: remote.Files(t.TempDir())}, g, &guesttest.Log{}); err != nil {
			t.Fatal(err)
		}
	}
	create("d1", "g1", "br-a", "br-old")
	create("d1", "g2", "br-shared")
	create("d2", "h1", "br-shared")

	remote = start() // the agent restarts; the main has lost its record
	if err := remote.Clean(ctx, "d1", &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if drv.guests["g1"] || drv.guests["g2"] || !drv.guests["h1"] {
		t.Errorf("guests after cleaning d1: %v, want only h1", drv.guests)
	}
	bridges, allowed := net.state()
	if want := []string{"br-old", "br-shared"}; !equal(bridges, want) {
		t.Errorf("bridges after cleaning d1: %v, want %v (one there before, one d2 uses)", bridges, want)
	}
	// The rules of br-old were added by the agent, so they go.
	if want := []string{"br-shared"}; !equal(allowed, want) {
		t.Errorf("firewall rules after cleaning d1: %v, want %v", allowed, want)
	}
	rec, err := remote.Deployed(ctx, "d1")
	if err != nil || !rec.Empty() {
		t.Errorf("record of d1 after clean: %+v, %v", rec, err)
	}
	rec, err = remote.Deployed(ctx, "d2")
	if err != nil || len(rec.Guests) != 1 || !rec.Bridges["br-shared"].Made {
		t.Errorf("record of d2 after cleaning d1: %+v, %v", rec, err)
	}
	if err := remote.Clean(ctx, "d2", &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	if bridges, _ := net.state(); !equal(bridges, []string{"br-old"}) {
		t.Errorf("bridges after cleaning d2: %v, want [br-old]", bridges)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConcurrentRecordsAllReachDisk: guests made at once share record
// writes, and every one of them is on disk when its call returns.
func TestConcurrentRecordsAllReachDisk(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	drv := &fakeDriver{guests: map[string]bool{}}
	start := func() *agent.RemoteHost {
		srv := httptest.NewServer(agent.Handler(agent.Options{Name: "c1", DataDir: data, Drivers: guest.NewRegistry(drv)}))
		t.Cleanup(srv.Close)
		remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Client: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return remote
	}
	remote := start()
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			g := &topology.Guest{Name: fmt.Sprintf("g%d", i), Kind: topology.KindNetns, Interfaces: []topology.Interface{{Bridge: "br0"}}}
			_, err := proxy.Create(ctx, guest.Deployment{Name: "d1", Files: remote.Files(data)}, g, &guesttest.Log{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rec, err := start().Deployed(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Guests) != n {
		t.Fatalf("a restarted agent knows %d guests, want %d", len(rec.Guests), n)
	}
	for name, g := range rec.Guests {
		if g.Pending {
			t.Errorf("guest %s still pending on disk", name)
		}
	}
}
