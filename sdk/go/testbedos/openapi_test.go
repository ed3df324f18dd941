package testbedos_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/sdk/go/testbedos"
)

// calls exercises every method of the Client once, by name.
var calls = map[string]func(ctx context.Context, c *testbedos.Client){
	"Health":           func(ctx context.Context, c *testbedos.Client) { c.Health(ctx) },
	"Status":           func(ctx context.Context, c *testbedos.Client) { c.Status(ctx) },
	"Metrics":          func(ctx context.Context, c *testbedos.Client) { c.Metrics(ctx) },
	"OpenAPI":          func(ctx context.Context, c *testbedos.Client) { c.OpenAPI(ctx) },
	"ValidateYAML":     func(ctx context.Context, c *testbedos.Client) { c.ValidateYAML(ctx, []byte("machines: []\n")) },
	"Deployments":      func(ctx context.Context, c *testbedos.Client) { c.Deployments(ctx) },
	"Deployment":       func(ctx context.Context, c *testbedos.Client) { c.Deployment(ctx, "lab") },
	"CreateDeployment": func(ctx context.Context, c *testbedos.Client) { c.CreateDeployment(ctx, "lab", "/srv/lab") },
	"UpdateDeployment": func(ctx context.Context, c *testbedos.Client) { c.UpdateDeployment(ctx, "lab", "/srv/lab") },
	"DeleteDeployment": func(ctx context.Context, c *testbedos.Client) { c.DeleteDeployment(ctx, "lab", false) },
	"Action": func(ctx context.Context, c *testbedos.Client) {
		c.Action(ctx, "lab", testbedos.ActionRequest{Command: testbedos.Command{Name: testbedos.CmdUp}})
	},
	"Run":          func(ctx context.Context, c *testbedos.Client) { c.Run(ctx, "lab", testbedos.CmdUp, nil) },
	"Cancel":       func(ctx context.Context, c *testbedos.Client) { c.Cancel(ctx, "lab", "") },
	"State":        func(ctx context.Context, c *testbedos.Client) { c.State(ctx, "lab") },
	"Plan":         func(ctx context.Context, c *testbedos.Client) { c.Plan(ctx, "lab") },
	"Logs":         func(ctx context.Context, c *testbedos.Client) { c.Logs(ctx, "lab") },
	"Actions":      func(ctx context.Context, c *testbedos.Client) { c.Actions(ctx, "lab", 10, 0) },
	"ProjectFiles": func(ctx context.Context, c *testbedos.Client) { c.ProjectFiles(ctx, "lab") },
	"Power":        func(ctx context.Context, c *testbedos.Client) { c.Power(ctx, "lab", "web", "stopped") },
	"Images":       func(ctx context.Context, c *testbedos.Client) { c.Images(ctx) },
	"ImportImage": func(ctx context.Context, c *testbedos.Client) {
		c.ImportImage(ctx, "debian12", strings.NewReader("qcow2"), "")
	},
	"DeleteImage": func(ctx context.Context, c *testbedos.Client) { c.DeleteImage(ctx, "debian12") },
	"ExecAll": func(ctx context.Context, c *testbedos.Client) {
		c.ExecAll(ctx, "lab", testbedos.FanoutExecRequest{Command: []string{"true"}})
	},
	"ReadProjectFile": func(ctx context.Context, c *testbedos.Client) {
		c.ReadProjectFile(ctx, "lab", "scripts/setup.sh")
	},
	"WriteProjectFile": func(ctx context.Context, c *testbedos.Client) {
		c.WriteProjectFile(ctx, "lab", "setup.sh", []byte("#!/bin/sh\n"))
	},
	"DeleteProjectFile": func(ctx context.Context, c *testbedos.Client) { c.DeleteProjectFile(ctx, "lab", "old.sh") },
	"Guests":            func(ctx context.Context, c *testbedos.Client) { c.Guests(ctx, "lab") },
	"LogText":           func(ctx context.Context, c *testbedos.Client) { c.LogText(ctx, "u1") },
	"LogEntry": func(ctx context.Context, c *testbedos.Client) {
		c.LogEntry(ctx, "u1")
	},
	"Follow": func(ctx context.Context, c *testbedos.Client) { c.Follow(ctx, "u1", func(string) {}) },
	"Events": func(ctx context.Context, c *testbedos.Client) {
		c.Events(ctx, func(testbedos.Event, json.RawMessage) error { return nil })
	},
	"Exec": func(ctx context.Context, c *testbedos.Client) {
		c.Exec(ctx, "lab", "web", testbedos.ExecRequest{Command: []string{"true"}})
	},
	"Impairment": func(ctx context.Context, c *testbedos.Client) { c.Impairment(ctx, "lab", "web", "eth0") },
	"SetImpairment": func(ctx context.Context, c *testbedos.Client) {
		c.SetImpairment(ctx, "lab", "web", "eth0", testbedos.Impairment{Up: true})
	},
	"Capture": func(ctx context.Context, c *testbedos.Client) {
		if r, err := c.Capture(ctx, "lab", "web", "eth0", ""); err == nil {
			r.Close()
		}
	},
	"OpenConsole": func(ctx context.Context, c *testbedos.Client) { c.OpenConsole(ctx, "lab", "web") },
	"Snapshots":   func(ctx context.Context, c *testbedos.Client) { c.Snapshots(ctx, "lab", "vm") },
	"Snapshot":    func(ctx context.Context, c *testbedos.Client) { c.Snapshot(ctx, "lab", "vm", "s1") },
	"MonitorHost": func(ctx context.Context, c *testbedos.Client) { c.MonitorHost(ctx) },
	"MonitorGuest": func(ctx context.Context, c *testbedos.Client) {
		c.MonitorGuest(ctx, "lab", "web")
	},
	"HostConfig":    func(ctx context.Context, c *testbedos.Client) { c.HostConfig(ctx) },
	"SetHostConfig": func(ctx context.Context, c *testbedos.Client) { c.SetHostConfig(ctx, testbedos.HostConfig{}) },
	"ClusterConfig": func(ctx context.Context, c *testbedos.Client) { c.ClusterConfig(ctx) },
	"SetClusterConfig": func(ctx context.Context, c *testbedos.Client) {
		c.SetClusterConfig(ctx, testbedos.ClusterConfig{})
	},
	"Members":        func(ctx context.Context, c *testbedos.Client) { c.Members(ctx) },
	"Member":         func(ctx context.Context, c *testbedos.Client) { c.Member(ctx, "h2") },
	"Join":           func(ctx context.Context, c *testbedos.Client) { c.Join(ctx, testbedos.JoinRequest{Name: "h2"}) },
	"IssueJoinToken": func(ctx context.Context, c *testbedos.Client) { c.IssueJoinToken(ctx, 1, "1h") },
	"RemoveMember":   func(ctx context.Context, c *testbedos.Client) { c.RemoveMember(ctx, "h2") },
	"Graph":          func(ctx context.Context, c *testbedos.Client) { c.Graph(ctx, "lab") },
	"GraphFile":      func(ctx context.Context, c *testbedos.Client) { c.GraphFile(ctx, "lab", "dot") },
	"Inventory":      func(ctx context.Context, c *testbedos.Client) { c.Inventory(ctx, "lab", "ansible") },
	"Export": func(ctx context.Context, c *testbedos.Client) {
		if r, err := c.Export(ctx, "lab"); err == nil {
			r.Close()
		}
	},
	"Import": func(ctx context.Context, c *testbedos.Client) { c.Import(ctx, strings.NewReader("x"), "copy") },
}

// documented lists the operations of the server's OpenAPI document as Go
// mux patterns ("GET /api/deployments/{name}").
func documented(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestEveryRouteHasAMethod calls every method of the Client against a
// server that records which documented route each request matched: every
// operation of /api/openapi.json must be reached by some method, and no
// method may call a route the document does not have.
func TestEveryRouteHasAMethod(t *testing.T) {
	ops := documented(t)
	var mu sync.Mutex
	hit := map[string]bool{}
	var strays []string
	mux := http.NewServeMux()
	for _, op := range ops {
		mux.HandleFunc(op, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hit[op] = true
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{}"))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		strays = append(strays, r.Method+" "+r.URL.Path)
		mu.Unlock()
		http.NotFound(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := testbedos.New(srv.URL, testbedos.WithToken("t"))
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		call(ctx, c)
		cancel()
		_ = name
	}
	for _, op := range ops {
		if !hit[op] {
			t.Errorf("the OpenAPI document has %s, but no method of the Go SDK calls it", op)
		}
	}
	if len(strays) > 0 {
		t.Errorf("methods called routes the document does not have: %v", strays)
	}
}

// TestEveryMethodIsCalled keeps the calls table complete: a new method
// must be exercised against the document too.
func TestEveryMethodIsCalled(t *testing.T) {
	typ := reflect.TypeOf(&testbedos.Client{})
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i).Name
		if _, ok := calls[m]; !ok && m != "Server" {
			t.Errorf("method %s is not in the calls table of this test", m)
		}
	}
}
