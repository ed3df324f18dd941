package httpapi_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// clusterExchanges runs the host, cluster configuration and membership
// routes through the contract: the cluster token opens the join and
// nothing else, a member's secret opens its own membership.
func clusterExchanges(t *testing.T, c *contract, tb *testbed) {
	t.Helper()
	tcp := tb.tcp
	raw, err := os.ReadFile(tb.cfg.ClusterTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	ct := door{name: "tcp with the cluster token", base: tcp.base, token: strings.TrimSpace(string(raw)), client: tcp.client}

	var host api.HostConfig
	c.doJSON(t, tcp, call{method: "GET", path: "/api/config/host", want: 200}, &host)
	if !host.IsMainHost || host.CPUs < 1 {
		t.Errorf("host.json of the main: %+v", host)
	}
	c.do(t, tcp, call{method: "POST", path: "/api/config/host", body: jsonBody(host), want: 200})
	badIP, notMain := host, host
	badIP.IP = "nope"
	notMain.IsMainHost = false
	_, body := c.do(t, tcp, call{method: "POST", path: "/api/config/host", body: jsonBody(badIP), want: 422})
	if !strings.Contains(string(body), "ip") {
		t.Errorf("422 does not name the field: %s", body)
	}
	c.do(t, sock(tb), call{method: "POST", path: "/api/config/host", body: jsonBody(notMain), want: 422})
	c.do(t, tcp, call{method: "POST", path: "/api/config/host", body: `{"name":`, want: 400, doc: docRejects})
	var cc api.ClusterConfig
	c.doJSON(t, tcp, call{method: "GET", path: "/api/config/cluster", want: 200}, &cc)
	if len(cc.Hosts) != 1 || cc.Hosts[0].Name != host.Name {
		t.Errorf("cluster of the main alone: %+v", cc)
	}
	var members api.MemberList
	c.doJSON(t, tcp, call{method: "GET", path: "/api/cluster", want: 200}, &members)
	if len(members.Members) != 0 {
		t.Errorf("members before any join: %+v", members)
	}

	join := api.JoinRequest{
		Name: "client1", Fingerprint: "sha256:" + strings.Repeat("ab", 32), URL: "https://127.0.0.2:1",
		Host: api.HostConfig{Name: "client1", IP: "127.0.0.2", TestbedNIC: "lo", CPUs: 1, MemoryMB: 64},
	}
	c.do(t, tcp, call{method: "POST", path: "/api/cluster", body: jsonBody(join), want: 401}) // the API token does not join
	c.do(t, tb.wrong, call{method: "POST", path: "/api/cluster", body: jsonBody(join), want: 401})
	var ans api.JoinAnswer
	c.doJSON(t, ct, call{method: "POST", path: "/api/cluster", body: jsonBody(join), want: 200}, &ans)
	other := join
	other.Fingerprint = strings.Repeat("cd", 32)
	c.do(t, ct, call{method: "POST", path: "/api/cluster", body: jsonBody(other), want: 409})
	misnamed := join
	misnamed.Name = "client2"
	c.do(t, ct, call{method: "POST", path: "/api/cluster", body: jsonBody(misnamed), want: 400})
	c.do(t, ct, call{method: "POST", path: "/api/cluster", body: `{}`, want: 400, doc: docRejects})

	member := door{name: "tcp with client1's secret", base: tcp.base, token: ans.Secret, client: tcp.client}
	var m api.Member
	c.doJSON(t, member, call{method: "GET", path: "/api/cluster/client1", want: 200}, &m)
	if m.Name != "client1" || m.Fingerprint != join.Fingerprint {
		t.Errorf("membership: %+v", m)
	}
	c.do(t, ct, call{method: "GET", path: "/api/cluster/client1", want: 401})
	c.do(t, ct, call{method: "GET", path: "/api/deployments", want: 401})
	c.do(t, member, call{method: "GET", path: "/api/deployments", want: 401})
	c.doJSON(t, tcp, call{method: "GET", path: "/api/config/cluster", want: 200}, &cc)
	if len(cc.Hosts) != 2 || cc.Hosts[1].Name != "client1" {
		t.Errorf("cluster after the join: %+v", cc)
	}
	c.do(t, tcp, call{method: "GET", path: "/api/cluster/nope", want: 404})
	c.do(t, tcp, call{method: "GET", path: "/api/cluster/Nope", want: 400, doc: docRejects})
	c.do(t, tcp, call{method: "DELETE", path: "/api/cluster/Nope", want: 400, doc: docRejects})
	// POST /api/config/cluster: all or nothing; members are neither added
	// nor edited there, and one left out leaves.
	c.doJSON(t, tcp, call{method: "POST", path: "/api/config/cluster", body: jsonBody(cc), want: 200}, &cc)
	if len(cc.Hosts) != 2 {
		t.Errorf("cluster after posting it unchanged: %+v", cc)
	}
	stranger := api.ClusterConfig{Hosts: append(append([]api.ClusterHost(nil), cc.Hosts...), api.ClusterHost{HostConfig: api.HostConfig{Name: "stranger", IP: "127.0.0.3", CPUs: 1, MemoryMB: 64}})}
	_, body = c.do(t, tcp, call{method: "POST", path: "/api/config/cluster", body: jsonBody(stranger), want: 422})
	if !strings.Contains(string(body), "hosts[2] (stranger) is not a member") {
		t.Errorf("422 does not name the entry: %s", body)
	}
	edited := api.ClusterConfig{Hosts: append([]api.ClusterHost(nil), cc.Hosts...)}
	edited.Hosts[1].CPUs = 64
	c.do(t, tcp, call{method: "POST", path: "/api/config/cluster", body: jsonBody(edited), want: 422})
	c.do(t, tcp, call{method: "POST", path: "/api/config/cluster", body: `{"hosts": []}`, want: 422, doc: docRejects})
	c.do(t, tcp, call{method: "POST", path: "/api/config/cluster", body: `{"hosts":`, want: 400, doc: docRejects})
	c.doJSON(t, member, call{method: "GET", path: "/api/cluster/client1", want: 200}, &m)

	c.do(t, tcp, call{method: "DELETE", path: "/api/cluster/client1", want: 204})
	c.do(t, tcp, call{method: "DELETE", path: "/api/cluster/client1", want: 404})
	c.do(t, member, call{method: "GET", path: "/api/cluster/client1", want: 401})

	// Joined again, then left out of a posted configuration: it leaves.
	c.doJSON(t, ct, call{method: "POST", path: "/api/cluster", body: jsonBody(join), want: 200}, &ans)
	mainOnly := api.ClusterConfig{Hosts: cc.Hosts[:1]}
	c.doJSON(t, tcp, call{method: "POST", path: "/api/config/cluster", body: jsonBody(mainOnly), want: 200}, &cc)
	if len(cc.Hosts) != 1 {
		t.Errorf("cluster after posting the main alone: %+v", cc)
	}
	c.do(t, tcp, call{method: "GET", path: "/api/cluster/client1", want: 404})

	limitedJoins(t, c, tb, ct, join)
}

// limitedJoins: a join token for one host admits one, and that one again;
// a host removed for good is refused with the older cluster token until a
// new join token is used; new hosts past the burst get 429.
func limitedJoins(t *testing.T, c *contract, tb *testbed, ct door, join api.JoinRequest) {
	tcp := tb.tcp
	c.do(t, tcp, call{method: "POST", path: "/api/cluster/join-tokens", body: `{"uses": 1, "ttl": "soon"}`, want: 400})
	var tok httpapi.JoinTokenAnswer
	c.doJSON(t, sock(tb), call{method: "POST", path: "/api/cluster/join-tokens", body: `{"uses": 1, "ttl": "1h"}`, want: 201}, &tok)
	limited := door{name: "tcp with a join token for one host", base: tcp.base, token: tok.Secret, client: tcp.client}
	host := func(name string, fp byte) api.JoinRequest {
		j := join
		j.Name, j.Host.Name = name, name
		j.Fingerprint = "sha256:" + strings.Repeat(fmt.Sprintf("%02x", fp), 32)
		return j
	}
	c.do(t, limited, call{method: "POST", path: "/api/cluster", body: jsonBody(host("client3", 3)), want: 200})
	c.do(t, limited, call{method: "POST", path: "/api/cluster", body: jsonBody(host("client3", 3)), want: 200})
	c.do(t, limited, call{method: "POST", path: "/api/cluster", body: jsonBody(host("client4", 4)), want: 403})
	c.do(t, limited, call{method: "GET", path: "/api/deployments", want: 401})

	c.do(t, tcp, call{method: "DELETE", path: "/api/cluster/client3?forget=maybe", want: 400, doc: docRejects})
	c.do(t, tcp, call{method: "DELETE", path: "/api/cluster/client3?forget=true", want: 204})
	c.do(t, ct, call{method: "POST", path: "/api/cluster", body: jsonBody(host("client3", 3)), want: 403})
	c.do(t, limited, call{method: "POST", path: "/api/cluster", body: jsonBody(host("client3", 3)), want: 403})
	var fresh httpapi.JoinTokenAnswer
	c.doJSON(t, tcp, call{method: "POST", path: "/api/cluster/join-tokens", body: `{"uses": 1, "ttl": "1h"}`, want: 201}, &fresh)
	c.do(t, door{name: "tcp with a new join token", base: tcp.base, token: fresh.Secret, client: tcp.client},
		call{method: "POST", path: "/api/cluster", body: jsonBody(host("client3", 3)), want: 200})

	// New hosts past the burst are told to come back later.
	for i := range 40 {
		resp, err := ct.client.Do(ct.request(t, "POST", "/api/cluster", jsonBody(host(fmt.Sprintf("burst%d", i), byte(0x10+i))), nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 {
			c.do(t, ct, call{method: "POST", path: "/api/cluster", body: jsonBody(host("late", 0x99)), want: 429})
			return
		}
	}
	t.Error("40 new hosts joined at once: no 429")
}

func sock(tb *testbed) door { return tb.sock }
