package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
)

// FuzzRequestBodies sends arbitrary bodies to every route that decodes
// JSON: the answer is never a 5xx, and every error has the JSON error body's shape.
func FuzzRequestBodies(f *testing.F) {
	seeds := []string{
		`{"name":"lab","project_location":"/tmp"}`,
		`{"command":"up","provision":true}`,
		`{"command":{"up":{"up_cmd":{"provision":true,"rerun_scripts":false}}}}`,
		`{"command":"snapshot","snapshot":{"sub_command":"create","guest":"vm1","name":"s1"}}`,
		`{"project_location":"/"}`,
		`{"command":"down","generate_artefacts":true}`,
		`{"name":"../x"}`, `[]`, `null`, `{"a":`, `"x"`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	dir := f.TempDir()
	project := filepath.Join(dir, "project")
	os.MkdirAll(project, 0o755)
	os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	cfg := config.Server{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", DB: "file",
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10}
	exec := newGate()
	exec.open()
	s, err := New(context.Background(), Options{Config: cfg, Executor: exec})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(context.Background()) })
	h := s.Handler()
	create := httptest.NewRequest("POST", "/api/deployments", strings.NewReader(`{"name":"lab","project_location":"`+project+`"}`))
	h.ServeHTTP(httptest.NewRecorder(), create)

	routes := []struct{ method, path string }{
		{"POST", "/api/deployments"},
		{"PUT", "/api/deployments/lab"},
		{"POST", "/api/deployments/lab/action"},
		{"POST", "/api/deployments/nope/action"},
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		rt := routes[int(which)%len(routes)]
		req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code := rec.Code
		if code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, code, rec.Body)
		}
		if code >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code != code || eb.Error.Message == "" {
				t.Fatalf("%s %s %q: error body %q is not the JSON error body", rt.method, rt.path, body, rec.Body)
			}
		}
		// A deployment created by the fuzzer goes again, so names stay free.
		if rt.path == "/api/deployments" && code == http.StatusCreated {
			var d api.Deployment
			json.Unmarshal(rec.Body.Bytes(), &d)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/api/deployments/"+d.Name+"?force=true", nil))
		}
	})
}
