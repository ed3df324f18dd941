package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/net/capture"
	"github.com/testbedos/testbedos/internal/net/impair"
)

// linkNet is fakeNet with link operations: it records impairments and
// answers a capture with the filter's length.
type linkNet struct {
	fakeNet
	mu    sync.Mutex
	calls []string
}

func (n *linkNet) Impair(ctx context.Context, link string, imp impair.Impairment, up bool) error {
	if imp.DelayMS == 666 {
		return fmt.Errorf("impair %s: %w", link, impair.ErrNoNetem)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, fmt.Sprintf("%s %d %v", link, imp.DelayMS, up))
	return nil
}

func (n *linkNet) LinkUp(ctx context.Context, link string) (bool, error) {
	if link != "veth1" {
		return false, fmt.Errorf("link %s not found", link)
	}
	return true, nil
}

func (n *linkNet) Capture(ctx context.Context, link string, filter capture.Filter, w io.Writer) error {
	if link != "veth1" {
		return fmt.Errorf("capture %s: no such link", link)
	}
	_, err := fmt.Fprintf(w, "pcap of %s, %d instructions", link, len(filter))
	return err
}

// The main impairs and captures a client guest's link through the agent:
// the remote host's network has the link operations, and they reach the
// client's own network.
func TestLinksThroughTheAgent(t *testing.T) {
	net := &linkNet{}
	srv := httptest.NewServer(agent.RequireSecret("sec")(agent.Handler(agent.Options{
		Name: "c1", DataDir: t.TempDir(), Network: net,
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Secret: "sec", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := engine.LinkOpsOf(remote)
	if err != nil {
		t.Fatalf("a client host's link operations: %v", err)
	}
	ctx := context.Background()
	if err := ops.Impair(ctx, "veth1", impair.Impairment{DelayMS: 100}, false); err != nil {
		t.Fatal(err)
	}
	if len(net.calls) != 1 || net.calls[0] != "veth1 100 false" {
		t.Errorf("impairments on the client: %v", net.calls)
	}
	if err := ops.Impair(ctx, "veth1", impair.Impairment{DelayMS: 666}, true); !errors.Is(err, impair.ErrNoNetem) {
		t.Errorf("a kernel without netem on the client: %v", err)
	}
	if up, err := ops.LinkUp(ctx, "veth1"); err != nil || !up {
		t.Errorf("LinkUp = %v, %v", up, err)
	}
	if _, err := ops.LinkUp(ctx, "nope"); err == nil {
		t.Error("LinkUp of a missing link: no error")
	}
	var out bytes.Buffer
	filter := capture.Filter{bpf.RawInstruction{Op: 6, K: 1}, bpf.RawInstruction{Op: 6}}
	if err := ops.Capture(ctx, "veth1", filter, &out); err != nil || out.String() != "pcap of veth1, 2 instructions" {
		t.Errorf("capture: %q, %v", out.String(), err)
	}
	out.Reset()
	if err := ops.Capture(ctx, "nope", nil, &out); err == nil || out.Len() != 0 {
		t.Errorf("capture of a missing link: %q, %v", out.String(), err)
	}
}

// The impairments the main set on a client's links are set again when the
// client's server starts (the userspace ones ended with its process); one
// set back to nothing is forgotten.
func TestImpairmentsSetAgainAtClientStart(t *testing.T) {
	data := t.TempDir()
	srv := httptest.NewServer(agent.RequireSecret("sec")(agent.Handler(agent.Options{
		Name: "c1", DataDir: data, Network: &linkNet{},
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Secret: "sec", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := engine.LinkOpsOf(remote)
	ctx := context.Background()
	for _, c := range []struct {
		link string
		imp  impair.Impairment
		up   bool
	}{{"veth1", impair.Impairment{DelayMS: 100}, true}, {"veth2", impair.Impairment{DelayMS: 5}, true}, {"veth2", impair.Impairment{}, true}} {
		if err := ops.Impair(ctx, c.link, c.imp, c.up); err != nil {
			t.Fatal(err)
		}
	}
	restarted := &linkNet{}
	if err := agent.ResumeImpairments(ctx, agent.Options{Name: "c1", DataDir: data, Network: restarted}); err != nil {
		t.Fatal(err)
	}
	if len(restarted.calls) != 1 || restarted.calls[0] != "veth1 100 true" {
		t.Errorf("set again at start: %v", restarted.calls)
	}
}

// A client whose network cannot impair links says so, as the main's own
// network would (engine.ErrNoLinkOps).
func TestLinksOfANetworkWithout(t *testing.T) {
	srv := httptest.NewServer(agent.RequireSecret("sec")(agent.Handler(agent.Options{
		Name: "c1", DataDir: t.TempDir(), Network: &fakeNet{},
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Secret: "sec", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := engine.LinkOpsOf(remote)
	if err := ops.Impair(context.Background(), "veth1", impair.Impairment{DelayMS: 1}, true); !errors.Is(err, engine.ErrNoLinkOps) {
		t.Errorf("impair on a network without link operations: %v", err)
	}
}
