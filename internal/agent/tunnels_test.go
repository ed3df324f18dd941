package agent_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// The main makes a client's VXLAN tunnels through the agent: the link is on
// the client's bridge, recorded, and cleaning the deployment's bridge
// removes it.
func TestTunnelsThroughTheAgent(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	const secret = "s"
	srv := httptest.NewServer(agent.RequireSecret(secret)(agent.Handler(agent.Options{
		Name: "host2", DataDir: t.TempDir(), Network: hostnet.NewHost(nil),
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "host2", BaseURL: srv.URL, Secret: secret, Client: srv.Client(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tunnels, err := engine.TunnelsOf(remote)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bridge, vx := prefix+"br", prefix+"vx"
	if _, err := remote.Network().EnsureBridge(ctx, bridge); err != nil {
		t.Fatal(err)
	}
	spec := engine.TunnelSpec{Name: vx, VNI: 4242, Local: "127.0.0.1", Peers: []string{"127.0.0.2"}, Bridge: bridge}
	created, err := tunnels.EnsureTunnel(ctx, spec)
	if err != nil || !created {
		t.Fatalf("EnsureTunnel = %v, %v", created, err)
	}
	link, err := netlink.LinkByName(vx)
	if err != nil {
		t.Fatal(err)
	}
	br, _ := netlink.LinkByName(bridge)
	if link.Type() != "vxlan" || link.Attrs().MasterIndex != br.Attrs().Index {
		t.Fatalf("tunnel %s: type %s, master %d (bridge %d)", vx, link.Type(), link.Attrs().MasterIndex, br.Attrs().Index)
	}
	if again, err := tunnels.EnsureTunnel(ctx, spec); err != nil || again {
		t.Fatalf("second EnsureTunnel = %v, %v; want found", again, err)
	}
	if err := tunnels.DeleteTunnel(ctx, vx); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(vx); err == nil {
		t.Fatal("tunnel still there after DeleteTunnel")
	}
	if err := tunnels.DeleteTunnel(ctx, vx); err != nil {
		t.Fatalf("DeleteTunnel of a missing tunnel: %v", err)
	}
}
