package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// TestRouteTablePolicies: every route of the main's table says which
// credential opens it; only the health check, the login form and the
// login page's assets are open, the join takes the cluster token, a
// member reads its own membership with its secret, and only the action
// route is refused while stopping.
func TestRouteTablePolicies(t *testing.T) {
	e := newAuthEnv(t)
	want := map[string]httpapi.Access{
		"GET /healthz":            httpapi.AccessOpen,
		"GET /login":              httpapi.AccessOpen,
		"POST /login":             httpapi.AccessOpen,
		"GET /static/":            httpapi.AccessOpen,
		"GET /favicon.ico":        httpapi.AccessOpen,
		"POST /api/cluster":       httpapi.AccessClusterToken,
		"GET /api/cluster/{name}": httpapi.AccessMemberOrUser,
	}
	seen := map[string]bool{}
	for _, rt := range e.srv.table {
		if seen[rt.Pattern] {
			t.Errorf("%s: twice in the table", rt.Pattern)
		}
		seen[rt.Pattern] = true
		access, ok := want[rt.Pattern]
		if !ok {
			access = httpapi.AccessUser
		}
		if rt.Access != access {
			t.Errorf("%s: opened by %s, want %s", rt.Pattern, rt.Access, access)
		}
		// Routes that start actions are refused while the server stops.
		isAction := rt.Pattern == "POST /api/deployments/{name}/action" || rt.Pattern == "POST /api/deployments/{name}/guests/{guest}/power"
		if rt.Action != isAction {
			t.Errorf("%s: action %v, want %v", rt.Pattern, rt.Action, isAction)
		}
	}
	for _, p := range []string{metricsRoute, logoutRoute, "GET /{$}", "GET /api/events", "POST /api/deployments/{name}/action"} {
		if !seen[p] {
			t.Errorf("%s: not in the table", p)
		}
	}
	// A route no entry matches is behind the API token too.
	if resp := e.do(t, plain, "GET", "/api/nothing-here", "", nil); resp.StatusCode != 401 {
		t.Errorf("unknown route without a token: %d, want 401", resp.StatusCode)
	}
	if resp := e.do(t, plain, "GET", "/api/nothing-here", "", map[string]string{"Authorization": "Bearer " + e.token}); resp.StatusCode != 404 {
		t.Errorf("unknown route with the token: %d, want 404", resp.StatusCode)
	}
}

// TestForeignHostIsRefused: with auth off, a page on a foreign site whose
// name was rebound to the server's address sends its own name as Host and
// as Origin; creating a deployment and opening the events websocket are
// refused (421), while localhost, IP addresses and configured names work
// and the unix socket has no Host to check.
func TestForeignHostIsRefused(t *testing.T) {
	e := newEnv(t)
	rebound := map[string]string{"Host": "attacker.example:3355", "Origin": "http://attacker.example:3355"}
	send := func(method, path, body string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	body := `{"name":"rebound","project_location":"` + e.project + `"}`
	if resp := send("POST", "/api/deployments", body, rebound); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("create from a rebound name: %d, want 421", resp.StatusCode)
	}
	if _, err := e.c.Deployment(context.Background(), "rebound"); err == nil {
		t.Error("the rebound page created a deployment")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hdr := http.Header{"Origin": {rebound["Origin"]}}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.ts.URL, "http")+"/api/events", &websocket.DialOptions{HTTPHeader: hdr, Host: "attacker.example:3355"})
	if err == nil {
		conn.CloseNow()
		t.Error("the rebound page opened the events websocket")
	} else if resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("events from a rebound name: %v %v, want 421", resp, err)
	}
	for _, host := range []string{"localhost:3355", "127.0.0.1:1", "[::1]:80", e.srv.hostName} {
		if resp := send("GET", "/api/deployments", "", map[string]string{"Host": host}); resp.StatusCode != 200 {
			t.Errorf("Host %s: %d, want 200", host, resp.StatusCode)
		}
	}
	if !allowedHost("lab.example:443", map[string]bool{"lab.example": true}) || allowedHost("LAB.example.", map[string]bool{"lab.example.x": true}) {
		t.Error("configured names are not matched as names")
	}
}

// TestForeignHostWithAuth: with auth on, a GUI session reached through a
// rebound name is refused (421), while a request with the bearer token is
// not checked (the CLI and cluster hosts may use any DNS name of the
// server; a page cannot know the token).
func TestForeignHostWithAuth(t *testing.T) {
	e := newAuthEnv(t)
	cookie := e.login(t)
	get := func(hdr map[string]string) int {
		req, _ := http.NewRequest("GET", e.base+"/api/deployments", nil)
		req.Host = "attacker.example"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(map[string]string{"Cookie": SessionCookie + "=" + cookie.Value}); got != http.StatusMisdirectedRequest {
		t.Errorf("session through a rebound name: %d, want 421", got)
	}
	if got := get(map[string]string{"Authorization": "Bearer " + e.token}); got != 200 {
		t.Errorf("bearer token through another name: %d, want 200", got)
	}
	if got := get(nil); got != http.StatusMisdirectedRequest {
		t.Errorf("nothing through a rebound name: %d, want 421", got)
	}
}
