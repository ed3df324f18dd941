package httpapi_test

import (
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// TestACLWithUnknownFieldIs422 asks for generate-artefacts of a topology
// whose ACL match uses a field OVN has not got: a 422 naming the rule, the
// token and the line.
func TestACLWithUnknownFieldIs422(t *testing.T) {
	c := newContract(t)
	tb := startServer(t)
	dir := project(t, goodTopology+`  acl:
    switches:
      sw0:
        - {direction: to-lport, priority: 100, match: "ip4.sorc == 10.0.0.10 && icmp4", action: drop}
`)
	c.do(t, tb.tcp, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "acl", ProjectLocation: dir}), want: 201})
	_, body := c.do(t, tb.tcp, call{method: "POST", path: "/api/deployments/acl/action", body: `{"command":"generate-artefacts"}`, want: 422, doc: docAccepts})
	for _, want := range []string{"kvm-compose.yaml", "network.acl.switches.sw0[0].match", `unknown field \"ip4.sorc\"`, "kvm-compose.yaml:12: "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("422 body lacks %s: %s", want, body)
		}
	}
}
