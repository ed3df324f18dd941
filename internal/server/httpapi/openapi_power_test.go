package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// powerExchanges drives the power and fan-out exec routes of deployment
// lab (up, with the fake's live guests).
func powerExchanges(t *testing.T, c *contract, tb *testbed) {
	t.Helper()
	tcp := tb.tcp
	const g = "/api/deployments/lab/guests/"
	var a api.ActionAccepted
	c.doJSON(t, tcp, call{method: "POST", path: g + liveGuest + "/power", body: `{"state":"stopped"}`, want: 202}, &a)
	if _, o := c.outcomeOf(t, tcp, a.UUID); o.ErrorCode != api.ErrorCodeOK || !o.EndState.Is(api.StateUp) {
		t.Errorf("power: %+v, want success with the deployment still up", o)
	}
	for _, x := range []call{
		{path: g + liveGuest + "/power", body: `{"state":"paused"}`, want: 400, doc: docRejects},
		{path: g + liveGuest + "/power", body: `{"state":"running","x":1}`, want: 400, doc: docRejects},
		{path: g + "Web/power", body: `{"state":"running"}`, want: 400, doc: docRejects},
		{path: g + "web/power", body: `{"state":"running"}`, want: 409}, // not recorded as made
		{path: g + noexecGuest + "/power", body: `{"state":"running"}`, want: 422},
		{path: "/api/deployments/nope/guests/web/power", body: `{"state":"running"}`, want: 404},
	} {
		x.method = "POST"
		c.do(t, tcp, x)
	}

	var res api.FanoutExecResult
	c.doJSON(t, tcp, call{method: "POST", path: "/api/deployments/lab/exec", body: `{"guests":["vm1","noexec"],"command":["echo","hi"]}`, want: 200}, &res)
	if len(res.Results) != 2 || res.Results[0].Guest != "vm1" || res.Results[0].ExitCode != 3 || res.Results[0].Stdout != "echo hi\n" ||
		res.Results[1].Guest != "noexec" || res.Results[1].ExitCode != -1 || res.Results[1].Error == "" {
		out, _ := json.Marshal(res)
		t.Errorf("fan-out exec: %s", out)
	}
	for _, x := range []call{
		{path: "/api/deployments/lab/exec", body: `{"command":[]}`, want: 400, doc: docRejects},
		{path: "/api/deployments/lab/exec", body: `{"guests":["Web"],"command":["x"]}`, want: 400, doc: docEither},
		{path: "/api/deployments/lab/exec", body: `{"command":["cat"],"stdin":"` + strings.Repeat("QUFB", api.ExecStdinCap/3+2) + `"}`, want: 413, doc: docRejects},
		{path: "/api/deployments/nope/exec", body: `{"command":["x"]}`, want: 404},
	} {
		x.method = "POST"
		c.do(t, tcp, x)
	}
}

// powerFaults: the routes on deployment broken, whose record is damaged.
func powerFaults(t *testing.T, c *contract, tb *testbed) {
	t.Helper()
	c.do(t, tb.tcp, call{method: "POST", path: "/api/deployments/broken/guests/web/power", body: `{"state":"stopped"}`, want: 500})
	c.do(t, tb.tcp, call{method: "POST", path: "/api/deployments/broken/exec", body: `{"command":["x"]}`, want: 500})
}

// powerUnavailable: fan-out exec on a server without the engine.
func powerUnavailable(t *testing.T, c *contract, plain *testbed) {
	t.Helper()
	c.do(t, plain.tcp, call{method: "POST", path: "/api/deployments/lab/exec", body: `{"command":["x"]}`, want: 503})
}
