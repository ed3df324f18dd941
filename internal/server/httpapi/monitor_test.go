package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/testbedos/testbedos/internal/api"
)

// Guests lists the guests through the real engine (which has recorded
// nothing: the fake deploys nothing, so every guest is absent).
func (f *fakeEngine) Guests(ctx context.Context, d api.Deployment) ([]api.Guest, error) {
	return f.real.Guests(ctx, d)
}

// monitorBeforeState: the monitoring routes of a deployment without state,
// and the host's series.
func monitorBeforeState(t *testing.T, c *contract, d door) {
	t.Helper()
	// The plots are documented as strings; read them as such.
	openapi3filter.RegisterBodyDecoder("image/svg+xml", openapi3filter.FileBodyDecoder)
	for _, x := range []call{
		{path: "/api/deployments/lab/guests", want: 404},
		{path: "/api/deployments/nope/guests", want: 404},
		{path: "/api/deployments/Lab/guests", want: 400, doc: docRejects},
		{path: "/api/monitor/deployments/lab/guests/web", want: 404},
		{path: "/api/monitor/deployments/nope/guests/web", want: 404},
		{path: "/api/monitor/deployments/Lab/guests/web", want: 400, doc: docRejects},
		{path: "/api/monitor/deployments/lab/guests/Web", want: 400, doc: docRejects},
		{path: "/api/monitor/deployments/lab/guests/web?format=png", want: 400, doc: docRejects},
		{path: "/api/monitor/host?format=png", want: 400, doc: docRejects},
		{path: "/api/monitor/host?format=svg&range=2h", want: 400},
		{path: "/api/monitor/host?format=svg&range=10s", want: 400},
		{path: "/api/monitor/host?format=svg&range=5m", want: 200},
	} {
		x.method = "GET"
		c.do(t, d, x)
	}
	var host api.HostSeries
	c.doJSON(t, d, call{method: "GET", path: "/api/monitor/host", want: 200}, &host)
	if host.IntervalS <= 0 {
		t.Errorf("host series: %+v", host)
	}
	hdr, body := c.do(t, d, call{method: "GET", path: "/api/monitor/host?format=svg", want: 200})
	if hdr.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(body), "<svg") {
		t.Errorf("host plot: %s %.100q", hdr.Get("Content-Type"), body)
	}
}

// monitorAfterUp: a deployment with state lists its guests.
func monitorAfterUp(t *testing.T, c *contract, d door) {
	t.Helper()
	var guests []api.Guest
	c.doJSON(t, d, call{method: "GET", path: "/api/deployments/lab/guests", want: 200}, &guests)
	if len(guests) == 0 {
		t.Fatal("no guests")
	}
	for _, g := range guests {
		if g.Status != api.GuestAbsent || g.Resources != nil || len(g.Interfaces) == 0 {
			t.Errorf("guest %+v: want absent (nothing recorded), no resources, interfaces", g)
		}
	}
	var s api.GuestSeries
	c.doJSON(t, d, call{method: "GET", path: "/api/monitor/deployments/lab/guests/web", want: 200}, &s)
	if len(s.Samples) != 0 {
		data, _ := json.Marshal(s)
		t.Errorf("a guest that is not up has samples: %s", data)
	}
	c.do(t, d, call{method: "GET", path: "/api/monitor/deployments/lab/guests/web?format=svg", want: 200})
	c.do(t, d, call{method: "GET", path: "/api/monitor/deployments/lab/guests/nobody", want: 404})
}
