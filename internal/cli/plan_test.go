package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// fakeAPI answers the routes plan and deployment info read, in the shapes
// of the API's contract.
func fakeAPI(t *testing.T, plan api.Plan, guests string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/config/status", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.ServerStatus{Mode: "main"})
	})
	mux.HandleFunc("GET /api/deployments/lab", func(w http.ResponseWriter, r *http.Request) {
		id := "0b6c-uuid"
		json.NewEncoder(w).Encode(api.Deployment{Name: "lab", ProjectLocation: "/p/lab", State: api.StateIsUp, LastActionUUID: &id})
	})
	mux.HandleFunc("GET /api/deployments/lab/plan", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(plan)
	})
	mux.HandleFunc("GET /api/deployments/lab/guests", func(w http.ResponseWriter, r *http.Request) {
		if guests == "" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":404,"message":"deployment lab has no state yet: run generate-artefacts"}}`)
			return
		}
		io.WriteString(w, guests)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestPlanPrintsADiff(t *testing.T) {
	plan := api.Plan{Deployment: "lab",
		Changes: []api.PlanChange{
			{Kind: api.KindGuest, Name: "c", Host: "main", Op: api.OpRemove},
			{Kind: api.KindGuest, Name: "a", Host: "main", Op: api.OpRemake, Why: "interfaces[0].address 10.0.0.3/24 → 10.0.0.9/24"},
			{Kind: api.KindGuest, Name: "b", Host: "main", Op: api.OpImpair, Why: "interfaces[0].netem none → {\"delay_ms\":20}"},
			{Kind: api.KindSwitch, Name: "sw2", Host: "main", Op: api.OpAdd},
		},
		Unchanged: []api.PlanObject{{Kind: api.KindGuest, Name: "web", Host: "main"}}}
	url := fakeAPI(t, plan, "")
	code, out := run(t, "", nil, "--server-connection", url, "-p", "lab", "plan")
	if code != 0 {
		t.Fatalf("plan: exit %d", code)
	}
	for _, want := range []string{
		"- guest c\n",
		"~ guest a (re-made): interfaces[0].address 10.0.0.3/24 → 10.0.0.9/24\n",
		"~ guest b (impairment, in place): interfaces[0].netem",
		"+ switch sw2\n",
		"plan: 1 to add, 1 to remove, 1 to remake, 1 to impair; 1 unchanged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q", want)
		}
	}
	if strings.Contains(out, "web") {
		t.Error("plan names an unchanged guest")
	}
	url = fakeAPI(t, api.Plan{Deployment: "lab", Changes: []api.PlanChange{}, Unchanged: plan.Unchanged}, "")
	if code, out := run(t, "", nil, "--server-connection", url, "-p", "lab", "plan"); code != 0 || !strings.Contains(out, "no changes") {
		t.Errorf("empty plan: exit %d:\n%s", code, out)
	}
}

func TestDeploymentInfoListsGuests(t *testing.T) {
	guests := `[{"name":"web","kind":"netns","host":"main","status":"running",
	  "interfaces":[{"name":"eth0","switch":"sw0","ip":"10.0.0.10/24","mac":"02:00:00:00:00:01","leased":false}],
	  "resources":{"cpu_seconds":1.2,"memory_bytes":123456,"rx_bytes":10,"tx_bytes":20,"sampled_at":"2026-12-01T12:00:00Z"}},
	 {"name":"pc","kind":"libvirt","host":"node2","status":"stopped",
	  "interfaces":[{"name":"eth0","switch":"sw0","ip":"10.0.0.50/24","mac":"02:00:00:00:00:02","leased":true},
	                {"name":"eth1","switch":"sw1","ip":"","mac":"02:00:00:00:00:03","leased":false}],
	  "resources":null}]`
	url := fakeAPI(t, api.Plan{}, guests)
	code, out := run(t, "", nil, "--server-connection", url, "deployment", "info", "lab")
	if code != 0 {
		t.Fatalf("deployment info: exit %d", code)
	}
	for _, want := range []string{
		"deployment lab: up",
		"GUEST", "web    netns    main   running  eth0 10.0.0.10/24 on sw0",
		"pc     libvirt  node2  stopped  eth0 10.0.0.50/24 (leased) on sw0, eth1 no address on sw1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q", want)
		}
	}
	code, out = run(t, "", nil, "--server-connection", url, "deployment", "info", "lab", "--json")
	var got struct {
		Deployment api.Deployment    `json:"deployment"`
		Guests     []json.RawMessage `json:"guests"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Guests) != 2 || got.Deployment.Name != "lab" {
		t.Errorf("info --json: exit %d:\n%s", code, out)
	}
	// Before generate-artefacts the route answers 404: info says so.
	url = fakeAPI(t, api.Plan{}, "")
	if code, out := run(t, "", nil, "--server-connection", url, "deployment", "info", "lab"); code != 0 || !strings.Contains(out, "no guests yet") {
		t.Errorf("info without state: exit %d:\n%s", code, out)
	}
}

func TestProgressLine(t *testing.T) {
	lines := []string{
		"12:00:00.000 ==> up on deployment lab (action x)",
		"12:00:00.001 ==> up [1/3] init: 2 guests, 1 switch",
		"12:00:00.002 ==> up [2/3] network: 1 switch",
		"12:00:00.003     switch sw0: bridge tb1 created",
		"12:00:00.004 ==> up [3/3] end: deployment lab is up",
	}
	for _, tc := range []struct {
		tty  bool
		want string
	}{
		{false, strings.Join(lines, "\n") + "\n"},
		{true, lines[0] + "\n" +
			clearLine + lines[1] + clearLine + lines[2] +
			clearLine + lines[3] + "\n" + lines[2] +
			clearLine + lines[4] + "\n"},
	} {
		var out bytes.Buffer
		a := &app{stdout: &out, terminal: func(io.Writer) bool { return tc.tty }}
		p := a.newProgress()
		for _, l := range lines {
			p.line(l)
		}
		p.done()
		if out.String() != tc.want {
			t.Errorf("tty %v:\n%q\nwant\n%q", tc.tty, out.String(), tc.want)
		}
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is no terminal")
	}
}

// A server that begins to stop between starting an action and the CLI's
// follow answers the stream with 503: the action is interrupted (exit 3),
// not a failure of the CLI.
func TestFollowRefusedByAStoppingServerIsAnInterrupt(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/config/status", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.ServerStatus{Mode: "main"})
	})
	// up asks whether the deployment has artefacts before it starts.
	mux.HandleFunc("GET /api/deployments/lab", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Deployment{Name: "lab"})
	})
	mux.HandleFunc("GET /api/deployments/lab/state", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{}`)
	})
	mux.HandleFunc("POST /api/deployments/lab/action", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"uuid":"0b6c-uuid"}`)
	})
	mux.HandleFunc("GET /api/logs/0b6c-uuid/stream", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":503,"message":"the server is shutting down"}}`)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	code, out := run(t, "", nil, "--server-connection", ts.URL, "-p", "lab", "up")
	if code != api.ErrorCodeInterrupted || !strings.Contains(out, "up interrupted: the server stopped while it ran; deployment lab is failed(up)") {
		t.Errorf("exit %d, want %d saying interrupted:\n%s", code, api.ErrorCodeInterrupted, out)
	}
}
