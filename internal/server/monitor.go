package server

import (
	"context"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/monitor"
	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// guestResources is the guests route: the executor's guests (the engine
// asks each guest's host for its status) with the monitor's latest sample
// for those on this host. Guests on other hosts of the cluster have no
// resources: their hosts sample them, and nothing brings the samples here
// yet.
type guestResources struct {
	list     httpapi.Guests
	mon      *monitor.Monitor
	hostName string
}

func (g guestResources) Guests(ctx context.Context, d api.Deployment) ([]api.Guest, error) {
	list, err := g.list.Guests(ctx, d)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Host == g.hostName && list[i].Status == api.GuestRunning {
			list[i].Resources = g.mon.Latest(d.Name, list[i].Name)
		}
	}
	return list, nil
}
