package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
)

// gateExecutor is a hand-written fake engine: each action logs a line and
// waits for its gate (or the cancel), so tests control when actions end.
type gateExecutor struct {
	gate     chan struct{}
	openOnce sync.Once
	fail     error
	check    error
	// line, when set, is logged as a setup script's output would be.
	line string
	// linger, when set, holds a cancelled action until it is closed (an
	// engine that takes its time to clean up).
	linger chan struct{}
}

func newGate() *gateExecutor { return &gateExecutor{gate: make(chan struct{})} }

// open lets every action, running or still to come, go past its gate.
func (g *gateExecutor) open() { g.openOnce.Do(func() { close(g.gate) }) }

func (g *gateExecutor) Check(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command) error {
	return g.check
}

func (g *gateExecutor) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	log.Printf("step one of %s", cmd)
	if g.line != "" {
		log.Printf("%s", g.line)
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		if g.linger != nil {
			<-g.linger
		}
		log.Printf("cleaned up after cancel")
		return prev, ctx.Err()
	}
	log.Printf("step two of %s", cmd)
	if g.fail != nil {
		return prev, g.fail
	}
	if cmd.Name == api.CmdUp {
		return api.StateIsUp, nil
	}
	return api.StateIsDown, nil
}

type env struct {
	srv     *Server
	ts      *httptest.Server
	c       *client.Client
	cfg     config.Server
	exec    *gateExecutor
	project string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Server{
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", DB: "file", Auth: false,
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	exec := newGate()
	s, err := New(context.Background(), Options{Config: cfg, Executor: exec})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestHTTP(t, s)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	project := filepath.Join(dir, "project")
	os.MkdirAll(project, 0o755)
	os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	cfg.Validate()
	return &env{srv: s, ts: ts, c: c, cfg: cfg, exec: exec, project: project}
}

// newTestHTTP serves s on a loopback port until the test ends.
func newTestHTTP(t *testing.T, s *Server) *httptest.Server {
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
		ts.Close()
	})
	return ts
}

// call does a raw request and returns the status and the error message.
func (e *env) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Code != resp.StatusCode {
			t.Fatalf("%s %s: error body %q is not the JSON error body", method, path, data)
		}
		return resp.StatusCode, eb.Error.Message
	}
	return resp.StatusCode, string(data)
}

func (e *env) create(t *testing.T, name string) {
	t.Helper()
	if _, err := e.c.CreateDeployment(context.Background(), name, e.project); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidNamesAre400AndTouchNoFile(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"../x", "A", strings.Repeat("a", 64), "a/b", "", "x-logs", "../../etc/passwd"} {
		body, _ := json.Marshal(api.NewDeployment{Name: name, ProjectLocation: e.project})
		if code, msg := e.call(t, "POST", "/api/deployments", string(body)); code != 400 {
			t.Errorf("create %q: %d %s, want 400", name, code, msg)
		}
	}
	for _, path := range []string{"/api/deployments/A", "/api/deployments/" + strings.Repeat("a", 64) + "/action"} {
		method := "GET"
		if strings.HasSuffix(path, "action") {
			method = "POST"
		}
		if code, _ := e.call(t, method, path, `{"command":"up"}`); code != 400 {
			t.Errorf("%s %s: %d, want 400", method, path, code)
		}
	}
	entries, _ := os.ReadDir(e.cfg.DeploymentsDir())
	if len(entries) != 0 {
		t.Fatalf("invalid names left files: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "x.json")); err == nil {
		t.Fatal("../x escaped the deployments folder")
	}
}

func TestCreateGetUpdateDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "lab")
	if _, err := e.c.CreateDeployment(ctx, "lab", e.project); client.StatusOf(err) != 409 {
		t.Fatalf("second create: %v, want 409", err)
	}
	for _, loc := range []string{"relative/path", "/does/not/exist", e.cfg.DataDir} {
		if _, err := e.c.CreateDeployment(ctx, "other", loc); client.StatusOf(err) != 400 {
			t.Errorf("project_location %q: %v, want 400", loc, err)
		}
	}
	d, err := e.c.Deployment(ctx, "lab")
	if err != nil || d.ProjectLocation != e.project || !d.State.Is(api.StateDown) {
		t.Fatalf("GET = %+v, %v", d, err)
	}
	if _, err := e.c.Deployment(ctx, "nope"); client.StatusOf(err) != 404 {
		t.Fatalf("GET missing: %v, want 404", err)
	}
	list, err := e.c.Deployments(ctx)
	if err != nil || len(list) != 1 || list["lab"].Name != "lab" {
		t.Fatalf("list = %v, %v", list, err)
	}
	if _, err := e.c.UpdateDeployment(ctx, "lab", e.project+"/"); err != nil {
		t.Fatalf("PUT: %v", err)
	}
	if err := e.c.DeleteDeployment(ctx, "lab", false); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	if err := e.c.DeleteDeployment(ctx, "lab", false); client.StatusOf(err) != 404 {
		t.Fatalf("DELETE again: %v, want 404", err)
	}
}

func TestBadBodies(t *testing.T) {
	e := newEnv(t)
	e.create(t, "lab")
	cases := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/api/deployments", `{"name":"x","project_location":"/tmp","extra":1}`, 400},
		{"POST", "/api/deployments", `{"name":`, 400},
		{"POST", "/api/deployments", `{"name":"x"} {"name":"y"}`, 400},
		{"POST", "/api/deployments/lab/action", `{"command":"explode"}`, 400},
		{"POST", "/api/deployments/lab/action", `{"command":"down","provision":true}`, 400},
		{"POST", "/api/deployments/lab/action", `{}`, 400},
		{"POST", "/api/deployments/lab/action", `{"command":"snapshot","snapshot":{"sub_command":"create","guest":"vm1"}}`, 400},
		{"POST", "/api/deployments/nope/action", `{"command":"up"}`, 404},
		{"POST", "/api/deployments/lab/cancel", ``, 409},
		{"POST", "/api/deployments/nope/cancel", ``, 404},
		{"GET", "/api/deployments/lab/state", ``, 404},
		{"GET", "/api/logs/does-not-exist", ``, 404},
		{"GET", "/api/logs/does-not-exist/text", ``, 404},
		{"GET", "/api/logs/does-not-exist/stream", ``, 404},
		{"GET", "/api/nothing-here", ``, 404},
		{"PATCH", "/api/deployments/lab", `{}`, 405},
	}
	for _, tc := range cases {
		if code, msg := e.call(t, tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("%s %s %s: %d %q, want %d", tc.method, tc.path, tc.body, code, msg, tc.want)
		}
	}
	big := `{"name":"x","project_location":"` + strings.Repeat("a", 10<<20) + `"}`
	if code, _ := e.call(t, "POST", "/api/deployments", big); code != 413 {
		t.Errorf("10 MB body: %d, want 413", code)
	}
}

func TestSecondActionWhileRunningIs409(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "lab")
	id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	// The 409 names the running action and how to follow it.
	code, msg := e.call(t, "POST", "/api/deployments/lab/action", `{"command":"down"}`)
	if want := "kvm-compose logs " + id + " --follow"; code != 409 || !strings.Contains(msg, want) {
		t.Fatalf("second action: %d %q, want 409 saying %q", code, msg, want)
	}
	if err := e.c.DeleteDeployment(ctx, "lab", true); client.StatusOf(err) != 409 {
		t.Fatalf("delete while running: %v, want 409", err)
	}
	if _, err := e.c.UpdateDeployment(ctx, "lab", e.project); client.StatusOf(err) != 409 {
		t.Fatalf("update while running: %v, want 409", err)
	}
	e.exec.open()
	o, err := e.c.Follow(ctx, id, func(string) {})
	if err != nil || o.ErrorCode != 0 || !o.EndState.Is(api.StateUp) {
		t.Fatalf("outcome = %+v, %v", o, err)
	}
	if err := e.c.DeleteDeployment(ctx, "lab", false); client.StatusOf(err) != 409 {
		t.Fatalf("delete while up: %v, want 409", err)
	}
	if err := e.c.DeleteDeployment(ctx, "lab", true); err != nil {
		t.Fatalf("forced delete while up: %v", err)
	}
}

func TestCancelEndsActionWithCancelledCode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "lab")
	id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	done := make(chan api.Outcome)
	go func() {
		o, err := e.c.Follow(ctx, id, func(l string) { lines = append(lines, l) })
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	got, err := e.c.Cancel(ctx, "lab", "")
	if err != nil || got != id {
		t.Fatalf("cancel = %q, %v", got, err)
	}
	o := <-done
	if o.ErrorCode != api.ErrorCodeCancelled || !o.EndState.Is(api.StateFailed) {
		t.Fatalf("outcome = %+v", o)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "cleaned up after cancel") {
		t.Fatalf("follower missed the clean-up lines: %q", lines)
	}
	entry, _ := e.c.LogEntry(ctx, id)
	if entry.ErrorCode == nil || *entry.ErrorCode != api.ErrorCodeCancelled {
		t.Fatalf("index entry = %+v", entry)
	}
}

func TestLateFollowerGetsEveryLineAndOutcome(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "lab")
	e.exec.fail = errors.New("guest web: setup script exited with status 7")
	id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	var early []string
	earlyDone := make(chan api.Outcome)
	go func() {
		o, _ := e.c.Follow(ctx, id, func(l string) { early = append(early, l) })
		earlyDone <- o
	}()
	e.exec.open()
	<-earlyDone
	var late []string
	o, err := e.c.Follow(ctx, id, func(l string) { late = append(late, l) })
	if err != nil {
		t.Fatal(err)
	}
	if o.ErrorCode != api.ErrorCodeFailed || !o.EndState.Is(api.StateFailed) || o.EndState.Failed.Name != api.CmdUp {
		t.Fatalf("late outcome = %+v", o)
	}
	if strings.Join(late, "\n") != strings.Join(early, "\n") || len(late) < 4 {
		t.Fatalf("late follower got %d lines, early %d:\n%q\n%q", len(late), len(early), late, early)
	}
	text, _ := e.c.LogText(ctx, id)
	if strings.TrimSpace(text) != strings.Join(late, "\n") {
		t.Fatalf("/text differs from the stream")
	}
	d, _ := e.c.Deployment(ctx, "lab")
	if !d.State.Is(api.StateFailed) || d.LastActionUUID == nil || *d.LastActionUUID != id {
		t.Fatalf("deployment = %+v", d)
	}
	idx, _ := e.c.Logs(ctx, "lab")
	if en := idx[id]; en.ErrorCode == nil || *en.ErrorCode == 0 || !strings.Contains(en.Error, "status 7") {
		t.Fatalf("logs index entry = %+v", en)
	}
}

func TestStatusHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	st, err := e.c.Status(context.Background())
	if err != nil || st.Mode != "main" || st.Store != "file" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if code, _ := e.call(t, "GET", "/healthz", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	_, body := e.call(t, "GET", "/metrics", "")
	if !strings.Contains(body, "testbedos_http_requests_total") || !strings.Contains(body, `route="GET /healthz"`) {
		t.Fatalf("metrics lack request counts:\n%s", body[:min(len(body), 2000)])
	}
}

func TestServerLogHasOneLinePerRequest(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Server{DataDir: dir, Listen: "127.0.0.1:0", DB: "file",
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10}
	cfg.Validate()
	var stderr bytes.Buffer
	log, closer, err := NewLogger(cfg, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Config: cfg, Logger: log, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	for range 3 {
		resp, err := http.Get(ts.URL + "/api/deployments")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ts.Close()
	s.Close(context.Background())
	closer.Close()
	data, err := os.ReadFile(cfg.ServerLog())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" {
			if rec["method"] != "GET" || rec["path"] != "/api/deployments" || rec["status"] != float64(200) || rec["remote"] == "" {
				t.Fatalf("request line lacks fields: %s", line)
			}
			n++
		}
	}
	if n != 3 {
		t.Fatalf("server.log has %d request lines, want 3:\n%s", n, data)
	}
	if !strings.Contains(stderr.String(), "msg=request") {
		t.Fatal("stderr has no request lines")
	}
}
