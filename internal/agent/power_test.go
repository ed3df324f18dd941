package agent_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// powerDriver is fakeDriver whose guests can be stopped.
type powerDriver struct {
	*fakeDriver
	calls []string
}

func (p *powerDriver) Capabilities() guest.Capabilities { return guest.Capabilities{Power: true} }
func (p *powerDriver) Stop(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	p.calls = append(p.calls, "stop "+g.Name)
	log.Printf("stopped %s", g.Name)
	return nil
}
func (p *powerDriver) Start(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	p.calls = append(p.calls, "start "+g.Name)
	log.Printf("started %s", g.Name)
	return nil
}

// The main stops and starts a client's guest through the agent API: the
// proxy announces what the client's driver can do, and runs it there.
func TestPowerOnClientHost(t *testing.T) {
	drv := &powerDriver{fakeDriver: &fakeDriver{guests: map[string]bool{}}}
	srv := httptest.NewServer(agent.RequireSecret("sec")(agent.Handler(agent.Options{
		Name: "c1", DataDir: t.TempDir(), Drivers: guest.NewRegistry(drv),
	})))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Secret: "sec", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := guest.As[guest.PowerSwitch](proxy)
	if err != nil {
		t.Fatalf("the proxy of a driver with power: %v", err)
	}
	dep := guest.Deployment{Name: "d1", Files: remote.Files(t.TempDir())}
	g := &topology.Guest{Name: "g1", Kind: topology.KindNetns}
	log := &guesttest.Log{}
	if err := ps.Stop(context.Background(), dep, g, log); err != nil {
		t.Fatal(err)
	}
	if err := ps.Start(context.Background(), dep, g, log); err != nil {
		t.Fatal(err)
	}
	if strings.Join(drv.calls, ",") != "stop g1,start g1" || !strings.Contains(log.Text(), "[c1] stopped g1") {
		t.Errorf("calls %v, log:\n%s", drv.calls, log.Text())
	}
}
