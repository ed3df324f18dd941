package agent

import (
	"context"
	"net/http"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Power of client guests: the main's engine calls Stop and Start on the
// proxy driver; the agent runs the client's own driver's (guest.PowerSwitch)
// through POST /api/agent/guests/{stop,start}, streaming its log lines.

var _ guest.PowerSwitch = (*proxyDriver)(nil)

// Stop implements guest.PowerSwitch.
func (p *proxyDriver) Stop(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	_, err := p.h.stream(ctx, "guests/stop", GuestRequest{Deployment: dep.Name, Guest: *g}, log)
	return err
}

// Start implements guest.PowerSwitch.
func (p *proxyDriver) Start(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	_, err := p.h.stream(ctx, "guests/start", GuestRequest{Deployment: dep.Name, Guest: *g}, log)
	return err
}

// power runs the client driver's Stop or Start for guestCall.
func power(ctx context.Context, drv guest.Driver, dep guest.Deployment, g *topology.Guest, op string, log actlog.Log) (StreamLine, error) {
	ps, err := guest.As[guest.PowerSwitch](drv)
	if err != nil {
		return StreamLine{}, &httpError{status: http.StatusUnprocessableEntity, err: err}
	}
	if op == "stop" {
		return StreamLine{}, ps.Stop(ctx, dep, g, log)
	}
	return StreamLine{}, ps.Start(ctx, dep, g, log)
}
