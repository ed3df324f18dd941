package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/testbedos/testbedos/internal/actions"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/server"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/topology"
)

// serverRoutes are the documented routes the server package registers next
// to httpapi's.
var serverRoutes = []string{"GET /metrics"}

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI())
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadDoc(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %s: the document is written for 3.1", doc.OpenAPI)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			}
			public := op.Security != nil && len(*op.Security) == 0
			if public != (path == "/healthz") {
				t.Errorf("%s: only /healthz goes without the token (security: %v)", name, op.Security)
			}
			if !public && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s needs the token but documents no 401", name)
			}
		}
	}
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadDoc(t)
	registered := map[string]bool{}
	for _, p := range append(httpapi.Patterns(), serverRoutes...) {
		registered[p] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for p := range registered {
		if !documented[p] {
			t.Errorf("route %q is not in openapi.json", p)
		}
	}
	for p := range documented {
		if !registered[p] {
			t.Errorf("openapi.json documents %q, which no handler serves", p)
		}
	}
}

// verdict is what the document says of a request.
type verdict int

const (
	docAccepts verdict = iota
	docRejects
	docEither // a rule the document cannot state (one JSON value, body size)
)

// contract checks exchanges with a running server against the document and
// remembers which documented answers were seen.
type contract struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // "GET /api/…" -> statuses seen
}

func newContract(t *testing.T) *contract {
	routed := loadDoc(t)
	// The test server listens on a random port and a socket: route on paths only.
	routed.Servers = nil
	router, err := gorillamux.NewRouter(routed)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: loadDoc(t), router: router, seen: map[string]map[int]bool{}}
}

type viaSocket struct{}

// authenticate is the document's bearerAuth: a bearer token over TCP,
// nothing over the unix socket. Whether the token is right is the server's
// business (401, documented).
func authenticate(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	if socket, _ := r.Context().Value(viaSocket{}).(bool); socket {
		return nil
	}
	if s := in.SecurityScheme; s.Type != "http" || s.Scheme != "bearer" {
		return fmt.Errorf("security scheme %s/%s unknown to this test", s.Type, s.Scheme)
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || tok == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// check validates one exchange: the request against the document (whose
// verdict must be v), the answer's status, headers and body against the
// operation's responses.
func (c *contract) check(t *testing.T, v verdict, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	label := req.Method + " " + req.URL.RequestURI()
	route, params, err := c.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		c.checkUnrouted(t, label, "NoRoute", http.StatusNotFound, status, header, body)
		return
	case errors.Is(err, routers.ErrMethodNotAllowed):
		c.checkUnrouted(t, label, "MethodNotAllowed", http.StatusMethodNotAllowed, status, header, body)
		c.checkAllow(t, label, req, header.Get("Allow"))
		return
	case err != nil:
		t.Errorf("%s: %v", label, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authenticate},
	}
	rerr := openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case v == docAccepts && rerr != nil:
		t.Errorf("%s: the document refuses a request the test deems good: %v", label, rerr)
	case v == docRejects && rerr == nil:
		t.Errorf("%s: the document accepts a request the server must refuse", label)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: answer %d is not as documented: %v\nbody: %.500s", label, status, err, body)
	}
	if doc := route.Operation.Responses.Status(status); doc != nil && len(doc.Value.Content) == 0 && len(body) > 0 {
		t.Errorf("%s: answer %d has a body the document does not describe: %.200q", label, status, body)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := route.Method + " " + route.Path
	if c.seen[key] == nil {
		c.seen[key] = map[int]bool{}
	}
	c.seen[key][status] = true
}

// checkUnrouted checks the mux's own 404 and 405 against the document's
// shared responses of those names.
func (c *contract) checkUnrouted(t *testing.T, label, name string, want, status int, header http.Header, body []byte) {
	t.Helper()
	if status != want {
		t.Errorf("%s: %d; the document has no such route (%s, %d)", label, status, name, want)
		return
	}
	resp := c.doc.Components.Responses[name].Value
	for h, ref := range resp.Headers {
		if ref.Value.Required && header.Get(h) == "" {
			t.Errorf("%s: %d without the %s header", label, status, h)
		}
	}
	mt := resp.Content.Get(header.Get("Content-Type"))
	if mt == nil {
		t.Errorf("%s: %d with Content-Type %q, not in the document", label, status, header.Get("Content-Type"))
		return
	}
	c.checkJSON(t, label, mt.Schema, body)
}

// checkJSON checks a JSON document that no operation's answer carries.
func (c *contract) checkJSON(t *testing.T, label string, schema *openapi3.SchemaRef, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: %v: %.200q", label, err, body)
		return
	}
	if err := schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("%s: %s does not match %s: %v", label, body, schema.Ref, err)
	}
}

// checkAllow compares a 405's Allow header with the methods the document
// lists for the path (and HEAD, which every GET route answers too).
func (c *contract) checkAllow(t *testing.T, label string, req *http.Request, allow string) {
	t.Helper()
	var want []string
	for _, m := range []string{"DELETE", "GET", "PATCH", "POST", "PUT"} {
		probe := req.Clone(req.Context())
		probe.Method = m
		if _, _, err := c.router.FindRoute(probe); err == nil {
			want = append(want, m)
			if m == "GET" {
				want = append(want, "HEAD")
			}
		}
	}
	got := strings.Split(allow, ", ")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: Allow %q, the document lists %v", label, allow, want)
	}
}

// unseen lists the documented answers no exchange produced.
func (c *contract) unseen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				var status int
				fmt.Sscan(code, &status)
				if !c.seen[method+" "+path][status] {
					out = append(out, method+" "+path+" "+code)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// door is one way into the server.
type door struct {
	name   string
	base   string
	token  string
	socket bool
	client *http.Client
}

func (d door) request(t *testing.T, method, path, body string, header http.Header) *http.Request {
	t.Helper()
	ctx := context.WithValue(context.Background(), viaSocket{}, d.socket)
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return req
}

type call struct {
	method, path, body string
	header             http.Header
	want               int
	doc                verdict
}

// do sends x through d, checks the exchange and returns the answer's body.
func (c *contract) do(t *testing.T, d door, x call) (http.Header, []byte) {
	t.Helper()
	resp, err := d.client.Do(d.request(t, x.method, x.path, x.body, x.header))
	if err != nil {
		t.Fatalf("%s %s via %s: %v", x.method, x.path, d.name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s via %s: %v", x.method, x.path, d.name, err)
	}
	if resp.StatusCode != x.want {
		t.Errorf("%s %s via %s: %d %.300s, want %d", x.method, x.path, d.name, resp.StatusCode, body, x.want)
	}
	c.check(t, x.doc, d.request(t, x.method, x.path, x.body, x.header), resp.StatusCode, resp.Header, body)
	return resp.Header, body
}

// doJSON is do for an answer decoded into out.
func (c *contract) doJSON(t *testing.T, d door, x call, out any) {
	t.Helper()
	_, body := c.do(t, d, x)
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
}

// recorder keeps the websocket handshake request for the contract check.
type recorder struct {
	base http.RoundTripper
	req  *http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.req = req.Clone(req.Context())
	return r.base.RoundTrip(req)
}

// follow reads the log stream of action id to its end. It checks the
// handshake against the document and a normal close's reason against the
// Outcome schema.
func (c *contract) follow(t *testing.T, d door, id string) ([]string, websocket.CloseError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &recorder{base: d.client.Transport}
	header := http.Header{}
	if d.token != "" {
		header.Set("Authorization", "Bearer "+d.token)
	}
	url := "ws" + strings.TrimPrefix(d.base, "http") + "/api/logs/" + id + "/stream"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: rec}, HTTPHeader: header})
	if err != nil {
		t.Errorf("follow %s via %s: %v", id, d.name, err)
		return nil, websocket.CloseError{}
	}
	defer conn.CloseNow()
	req := rec.req.WithContext(context.WithValue(context.Background(), viaSocket{}, d.socket))
	c.check(t, docAccepts, req, resp.StatusCode, resp.Header, nil)
	var lines []string
	for {
		typ, data, err := conn.Read(ctx)
		if err == nil {
			if typ != websocket.MessageText {
				t.Errorf("follow %s: a %v message; the document promises text", id, typ)
			}
			lines = append(lines, string(data))
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Errorf("follow %s: ended without a close frame: %v", id, err)
			return lines, ce
		}
		if ce.Code == websocket.StatusNormalClosure {
			outcome := &openapi3.SchemaRef{Ref: "#/components/schemas/Outcome", Value: c.doc.Components.Schemas["Outcome"].Value}
			c.checkJSON(t, "close reason of "+id, outcome, []byte(ce.Reason))
		}
		return lines, ce
	}
}

// subscribe opens the events websocket through d, checks the handshake
// against the document and returns a function that reads the next event,
// checked against the Event schema.
func (c *contract) subscribe(t *testing.T, d door) func() api.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	rec := &recorder{base: d.client.Transport}
	header := http.Header{}
	if d.token != "" {
		header.Set("Authorization", "Bearer "+d.token)
	}
	url := "ws" + strings.TrimPrefix(d.base, "http") + "/api/events"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: rec}, HTTPHeader: header})
	if err != nil {
		t.Fatalf("events via %s: %v", d.name, err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	req := rec.req.WithContext(context.WithValue(context.Background(), viaSocket{}, d.socket))
	c.check(t, docAccepts, req, resp.StatusCode, resp.Header, nil)
	schema := &openapi3.SchemaRef{Ref: "#/components/schemas/Event", Value: c.doc.Components.Schemas["Event"].Value}
	return func() api.Event {
		t.Helper()
		typ, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("events via %s: %v", d.name, err)
		}
		if typ != websocket.MessageText {
			t.Errorf("events: a %v message; the document promises text", typ)
		}
		c.checkJSON(t, "event", schema, data)
		var e api.Event
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
}

// outcomeOf follows action id and decodes the outcome of its close frame.
func (c *contract) outcomeOf(t *testing.T, d door, id string) ([]string, api.Outcome) {
	t.Helper()
	lines, ce := c.follow(t, d, id)
	var o api.Outcome
	if ce.Code != websocket.StatusNormalClosure {
		t.Fatalf("follow %s: closed with %d %q", id, ce.Code, ce.Reason)
	}
	if err := json.Unmarshal([]byte(ce.Reason), &o); err != nil {
		t.Fatalf("follow %s: outcome %q: %v", id, ce.Reason, err)
	}
	return lines, o
}

// fakeEngine runs generate-artefacts and clear-artefacts with the real
// engine (they touch only the project folder), holds up until released or
// cancelled, and fails every snapshot action. It pretends that the guests
// in vms are virtual machines: vm1 has snapshot s1. Snapshots of any other
// guest are the real engine's business (its guests are namespaces).
type fakeEngine struct {
	real    *engine.Engine
	started chan struct{}
	release chan struct{}
	vms     map[string]bool
}

func (f *fakeEngine) Check(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command) error {
	if cmd.Name == api.CmdSnapshot && f.vms[cmd.Snapshot.Guest] || cmd.Name == api.CmdPower && f.vms[cmd.Power.Guest] {
		return nil
	}
	if cmd.Name == api.CmdPower && cmd.Power.Guest == noexecGuest {
		return errNoFeature
	}
	return f.real.Check(ctx, d, prev, cmd)
}

var fakeSnapshot = api.Snapshot{Name: "s1", Created: time.Unix(1700000000, 0).UTC(), State: "running", Current: true, Memory: true, Disks: []string{"vda"}}

func (f *fakeEngine) ListSnapshots(ctx context.Context, d api.Deployment, guest string) ([]api.Snapshot, error) {
	if !f.vms[guest] {
		return f.real.ListSnapshots(ctx, d, guest)
	}
	return []api.Snapshot{fakeSnapshot}, nil
}

func (f *fakeEngine) SnapshotInfo(ctx context.Context, d api.Deployment, guest, snapshot string) (api.Snapshot, error) {
	switch {
	case !f.vms[guest]:
		return f.real.SnapshotInfo(ctx, d, guest, snapshot)
	case snapshot != fakeSnapshot.Name:
		return api.Snapshot{}, fmt.Errorf("guest %s: no such snapshot %s (it has s1): %w", guest, snapshot, engine.ErrNotFound)
	}
	return fakeSnapshot, nil
}

// Plan answers a fixed plan for a valid kvm-compose.yaml: the fake's up
// records nothing for the real engine to compare with.
func (f *fakeEngine) Plan(ctx context.Context, d api.Deployment) (api.Plan, error) {
	if _, err := topology.Generate(topology.Options{Deployment: d.Name, ProjectDir: d.ProjectLocation}); err != nil {
		return api.Plan{}, err
	}
	return api.Plan{Deployment: d.Name,
		Changes:   []api.PlanChange{{Kind: api.KindGuest, Name: "web", Host: "localhost", Op: api.OpRemake, Why: "interfaces[0].address 10.0.0.9/24 → 10.0.0.10/24"}},
		Unchanged: []api.PlanObject{{Kind: api.KindSwitch, Name: "sw0", Host: "localhost"}}}, nil
}

// executorOnly hides the fake's snapshot reads: a server that cannot read
// snapshots.
type executorOnly struct{ actions.Executor }

func (f *fakeEngine) Execute(ctx context.Context, d api.Deployment, prev api.DeploymentState, cmd api.Command, log actlog.Log) (api.DeploymentState, error) {
	switch cmd.Name {
	case api.CmdUp:
		log.Printf("up: guests starting")
		select {
		case f.started <- struct{}{}:
		case <-ctx.Done():
		}
		select {
		case <-f.release:
		case <-ctx.Done():
			log.Printf("up: cancelled, cleaned up")
			return prev, context.Cause(ctx)
		}
		log.Printf("up: guests started")
		return api.StateIsUp, nil
	case api.CmdDown:
		log.Printf("down: nothing left")
		return api.StateIsDown, nil
	case api.CmdSnapshot:
		return prev, fmt.Errorf("snapshot %s: no guest kind here takes snapshots", cmd.Snapshot.SubCommand)
	case api.CmdPower:
		log.Printf("guest %s: %s", cmd.Power.Guest, cmd.Power.State)
		return prev, nil
	}
	return f.real.Execute(ctx, d, prev, cmd, log)
}

// waitUp waits until an up action holds.
func (f *fakeEngine) waitUp(t *testing.T) {
	t.Helper()
	select {
	case <-f.started:
	case <-time.After(30 * time.Second):
		t.Fatal("up did not start")
	}
}

// runUp lets the next up action finish.
func (f *fakeEngine) runUp(t *testing.T) {
	t.Helper()
	f.waitUp(t)
	select {
	case f.release <- struct{}{}:
	case <-time.After(30 * time.Second):
		t.Fatal("up did not wait for its release")
	}
}

type testbed struct {
	cfg         config.Server
	exec        *fakeEngine
	tcp         door // with the token
	anon, wrong door // over TCP without a token, with a wrong one
	sock        door // the unix socket, no token
}

// startServer serves a real server with authentication on, over TCP and a
// unix socket, until the test ends.
func startServer(t *testing.T) *testbed { return startServerWith(t, true) }

// startServerWith is startServer; without snapshots the executor does not
// read them.
func startServerWith(t *testing.T, snapshots bool) *testbed {
	t.Helper()
	// Unix socket paths are short (108 bytes): not under t.TempDir.
	sockDir, err := os.MkdirTemp("", "tbapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", Socket: filepath.Join(sockDir, "api.sock"),
		DB: "file", Auth: true, HeartbeatInterval: time.Second, HeartbeatMisses: 3,
		LogRetention: 24 * time.Hour, LogMaxCount: 1000,
	}
	exec := &fakeEngine{
		real:    engine.New(engine.Options{Drivers: guest.NewRegistry(netns.New(netns.Options{})), GeneratedDir: cfg.GeneratedDir()}),
		started: make(chan struct{}), release: make(chan struct{}),
		vms: map[string]bool{"vm1": true, strings.Repeat("g", 63): true},
	}
	var executor actions.Executor = exec
	if !snapshots {
		executor = executorOnly{exec}
	}
	s, err := server.New(context.Background(), server.Options{Config: cfg, Executor: executor})
	if err != nil {
		t.Fatal(err)
	}
	ls, stop, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	token, err := os.ReadFile(cfg.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	tcpClient := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	sockClient := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", cfg.Socket)
		},
	}}
	base := "http://" + ls[0].Addr().String()
	return &testbed{
		cfg: cfg, exec: exec,
		tcp:   door{name: "tcp", base: base, token: strings.TrimSpace(string(token)), client: tcpClient},
		anon:  door{name: "tcp without token", base: base, client: tcpClient},
		wrong: door{name: "tcp with a wrong token", base: base, token: "not-the-token", client: tcpClient},
		sock:  door{name: "unix socket", base: "http://testbedos", socket: true, client: sockClient},
	}
}

// project makes a project folder holding kvm-compose.yaml.
func project(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const goodTopology = `machines:
  - name: web
    network: [{switch: sw0, ip: 10.0.0.10}]
  - name: client1
    network: [{switch: sw0, ip: 10.0.0.21}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// badTopology has an address outside its switch's subnet.
const badTopology = `machines:
  - name: web
    network: [{switch: sw0, ip: 10.1.0.10}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

func wsHeaders() http.Header {
	return http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
}

func jsonBody(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// TestServerAnswersAsDocumented drives a real server through every route and
// many error paths; every exchange is checked against openapi.json, and
// every answer the document lists must have been seen.
func TestServerAnswersAsDocumented(t *testing.T) {
	c := newContract(t)
	tb := startServer(t)
	tcp, anon, sock := tb.tcp, tb.anon, tb.sock
	good, bad := project(t, goodTopology), project(t, badTopology)
	big := strings.Repeat("a", 2<<20)

	// The server itself, and the doors.
	c.do(t, anon, call{method: "GET", path: "/healthz", want: 200})
	c.do(t, sock, call{method: "GET", path: "/healthz", want: 200})
	c.do(t, tcp, call{method: "GET", path: "/api/config/status", want: 200})
	c.do(t, sock, call{method: "GET", path: "/api/config/status", want: 200})
	c.do(t, tb.wrong, call{method: "GET", path: "/api/config/status", want: 401})
	c.do(t, tcp, call{method: "GET", path: "/metrics", want: 200})
	if _, body := c.do(t, tcp, call{method: "GET", path: "/api/openapi.json", want: 200}); !bytes.Equal(body, httpapi.OpenAPI()) {
		t.Error("GET /api/openapi.json differs from the embedded document")
	}
	c.do(t, tcp, call{method: "GET", path: "/api/nothing-here", want: 404, doc: docRejects})
	c.do(t, tcp, call{method: "PATCH", path: "/api/deployments/lab", body: `{}`, want: 405, doc: docRejects})
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments", want: 405, doc: docRejects})

	// Records.
	hdr, _ := c.do(t, tcp, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "lab", ProjectLocation: good}), want: 201})
	if loc := hdr.Get("Location"); loc != "/api/deployments/lab" {
		t.Errorf("Location %q", loc)
	}
	c.do(t, sock, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "bad", ProjectLocation: bad}), want: 201})
	for _, x := range []call{
		{body: jsonBody(api.NewDeployment{Name: "lab", ProjectLocation: good}), want: 409},
		{body: jsonBody(api.NewDeployment{Name: "Lab", ProjectLocation: good}), want: 400, doc: docRejects},
		{body: jsonBody(api.NewDeployment{Name: "x-logs", ProjectLocation: good}), want: 400},
		{body: jsonBody(api.NewDeployment{Name: "x", ProjectLocation: "relative/path"}), want: 400, doc: docRejects},
		{body: jsonBody(api.NewDeployment{Name: "x", ProjectLocation: "/does/not/exist"}), want: 400},
		{body: jsonBody(api.NewDeployment{Name: "x", ProjectLocation: tb.cfg.DataDir}), want: 400},
		{body: `{"project_location":"` + good + `"}`, want: 400, doc: docRejects},
		{body: `{"name":"x","project_location":"` + good + `","extra":1}`, want: 400, doc: docRejects},
		{body: `{"name":`, want: 400, doc: docRejects},
		{body: `{"name":"x","project_location":"/"} {"name":"y"}`, want: 400, doc: docEither},
		{body: `{"name":"` + big + `","project_location":"/"}`, want: 413, doc: docEither},
	} {
		x.method, x.path = "POST", "/api/deployments"
		c.do(t, tcp, x)
	}
	var list api.DeploymentList
	c.doJSON(t, tcp, call{method: "GET", path: "/api/deployments", want: 200}, &list)
	if len(list.Deployments) != 2 {
		t.Errorf("list: %v", list)
	}
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/lab", want: 200})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/nope", want: 404})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/Lab", want: 400, doc: docRejects})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/lab-logs", want: 400})
	put := func(name, body string, want int, v verdict) {
		c.do(t, tcp, call{method: "PUT", path: "/api/deployments/" + name, body: body, want: want, doc: v})
	}
	put("lab", jsonBody(api.UpdateDeployment{ProjectLocation: good + "/"}), 200, docAccepts)
	put("nope", jsonBody(api.UpdateDeployment{ProjectLocation: good}), 404, docAccepts)
	put("Lab", jsonBody(api.UpdateDeployment{ProjectLocation: good}), 400, docRejects)
	put("lab", `{}`, 400, docRejects)
	put("lab", jsonBody(api.UpdateDeployment{ProjectLocation: "/does/not/exist"}), 400, docAccepts)
	put("lab", `{"project_location":"`+big+`"}`, 413, docEither)
	for _, x := range []call{
		{path: "/api/deployments/lab/state", want: 404},
		{path: "/api/deployments/nope/state", want: 404},
		{path: "/api/deployments/Lab/state", want: 400, doc: docRejects},
		{path: "/api/deployments/lab/logs", want: 200},
		{path: "/api/deployments/lab/plan", want: 409}, // down
		{path: "/api/deployments/nope/plan", want: 404},
		{path: "/api/deployments/Lab/plan", want: 400, doc: docRejects},
		{path: "/api/deployments/nope/logs", want: 404},
		{path: "/api/deployments/Lab/logs", want: 400, doc: docRejects},
		{path: "/api/deployments/lab/actions?limit=5", want: 200},
		{path: "/api/deployments/lab/actions?limit=0", want: 400, doc: docRejects},
		{path: "/api/deployments/nope/actions", want: 404},
		{path: "/api/logs/nope", want: 404},
		{path: "/api/logs/nope/text", want: 404},
		{path: "/api/deployments/lab/guests/web/snapshots", want: 409}, // no artefacts yet
		{path: "/api/deployments/lab/guests/web/snapshots/s1", want: 409},
		{path: "/api/deployments/nope/guests/web/snapshots", want: 404},
		{path: "/api/deployments/nope/guests/web/snapshots/s1", want: 404},
		{path: "/api/deployments/Lab/guests/web/snapshots", want: 400, doc: docRejects},
		{path: "/api/deployments/lab/guests/Web/snapshots", want: 400, doc: docRejects},
		{path: "/api/deployments/lab/guests/web/snapshots/S1", want: 400, doc: docRejects},
		{path: "/api/logs/nope/stream", header: wsHeaders(), want: 404},
	} {
		x.method = "GET"
		c.do(t, tcp, x)
	}

	monitorBeforeState(t, c, tcp)

	// Refused actions.
	action := func(d door, name, body string, want int, v verdict) string {
		t.Helper()
		_, data := c.do(t, d, call{method: "POST", path: "/api/deployments/" + name + "/action", body: body, want: want, doc: v})
		var a api.ActionAccepted
		if want == 202 {
			if err := json.Unmarshal(data, &a); err != nil {
				t.Fatal(err)
			}
		}
		return a.UUID
	}
	action(tcp, "lab", `{"command":"up"}`, 409, docAccepts)    // no artefacts yet
	action(tcp, "lab", `{"command":"apply"}`, 409, docAccepts) // down
	action(tcp, "bad", `{"command":"generate-artefacts"}`, 422, docAccepts)
	action(tcp, "nope", `{"command":"up"}`, 404, docAccepts)
	action(tcp, "Lab", `{"command":"up"}`, 400, docRejects)
	action(tcp, "lab", `{"command":"explode"}`, 400, docRejects)
	action(tcp, "lab", `{}`, 400, docRejects)
	action(tcp, "lab", `{"command":null}`, 400, docRejects)
	action(tcp, "lab", `{"command":"down","provision":true}`, 400, docAccepts)
	action(tcp, "lab", `{"command":"generate-artefacts","snapshot":{"sub_command":"list","guest":"web"}}`, 400, docAccepts)
	action(tcp, "lab", `{"command":"snapshot","snapshot":{"sub_command":"create","guest":"web"}}`, 400, docRejects)
	action(tcp, "lab", `{"command":"snapshot","snapshot":{"sub_command":"list","guest":"web"}}`, 400, docAccepts) // a GET
	action(tcp, "lab", `{"command":{"snapshot":{"snapshot_cmd":{"sub_command":"info","guest":"web","name":"s1"}}}}`, 400, docAccepts)
	action(tcp, "lab", `{"command":{"up":{"up_cmd":{"provision":true,"extra":1}}}}`, 400, docRejects)
	action(tcp, "lab", `{"command":{"down":{},"up":{}}}`, 400, docRejects)
	action(tcp, "lab", `{"command":{"down":{"force":true}}}`, 400, docRejects)
	action(tcp, "lab", `{"command":"up","extra":1}`, 400, docRejects)
	action(tcp, "lab", `{"command":"up","snapshot":{"sub_command":"list","guest":"`+big+`"}}`, 413, docEither)
	for _, x := range []call{
		{path: "/api/deployments/lab/cancel", want: 409},
		{path: "/api/deployments/nope/cancel", want: 404},
		{path: "/api/deployments/Lab/cancel", want: 400, doc: docRejects},
	} {
		x.method = "POST"
		c.do(t, tcp, x)
	}

	// generate-artefacts, followed over the socket, its events over TCP.
	nextEvent := c.subscribe(t, tcp)
	id := action(tcp, "lab", `{"command":"generate-artefacts"}`, 202, docAccepts)
	if _, o := c.outcomeOf(t, sock, id); o.ErrorCode != 0 || !o.EndState.Is(api.StateDown) {
		t.Fatalf("generate-artefacts: %+v", o)
	}
	for _, want := range []api.EventType{api.EventActionStarted, api.EventDeploymentState, api.EventActionEnded, api.EventDeploymentState} {
		if e := nextEvent(); e.Type != want || e.UUID != id || e.Deployment != "lab" {
			t.Errorf("event %+v, want %s of %s", e, want, id)
		}
	}
	c.do(t, tcp, call{method: "GET", path: "/api/events", want: 426, doc: docRejects})
	eventsBadVersion := wsHeaders()
	eventsBadVersion.Set("Sec-Websocket-Version", "12")
	c.do(t, tcp, call{method: "GET", path: "/api/events", header: eventsBadVersion, want: 400, doc: docRejects})
	eventsOrigin := wsHeaders()
	eventsOrigin.Set("Origin", "http://elsewhere.example")
	c.do(t, tcp, call{method: "GET", path: "/api/events", header: eventsOrigin, want: 403})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/lab/state", want: 200})

	// up in the original's shape, cancelled while it runs.
	cancelled := action(tcp, "lab", `{"command":{"up":{"up_cmd":{"provision":true,"rerun_scripts":false}}}}`, 202, docAccepts)
	tb.exec.waitUp(t)
	var dep api.Deployment
	c.doJSON(t, tcp, call{method: "GET", path: "/api/deployments/lab", want: 200}, &dep)
	if !dep.State.Is(api.StateRunning) || dep.LastActionUUID == nil || *dep.LastActionUUID != cancelled {
		t.Errorf("while up runs: %+v", dep)
	}
	c.do(t, tcp, call{method: "GET", path: "/api/logs/" + cancelled, want: 200}) // nulls while it runs
	c.do(t, tcp, call{method: "GET", path: "/api/logs/" + cancelled + "/text", want: 200})
	action(tcp, "lab", `{"command":"down"}`, 409, docAccepts)
	put("lab", jsonBody(api.UpdateDeployment{ProjectLocation: good}), 409, docAccepts)
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/lab?force=true", want: 409})
	followed := make(chan api.Outcome)
	go func() {
		lines, ce := c.follow(t, tcp, cancelled)
		var o api.Outcome
		json.Unmarshal([]byte(ce.Reason), &o)
		if !hasLineEnding(lines, "up: cancelled, cleaned up") {
			t.Errorf("the follower missed the clean-up line: %q", lines)
		}
		followed <- o
	}()
	// A cancel naming another action cancels nothing.
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/lab/cancel", body: `{"uuid":"` + id + `"}`, want: 409})
	c.do(t, tcp, call{method: "POST", path: "/api/deployments/lab/cancel", body: `{"uuid":1}`, want: 400, doc: docRejects})
	var acc api.ActionAccepted
	c.doJSON(t, tcp, call{method: "POST", path: "/api/deployments/lab/cancel", body: `{"uuid":"` + cancelled + `"}`, want: 202}, &acc)
	if acc.UUID != cancelled {
		t.Errorf("cancel answered %q, want %q", acc.UUID, cancelled)
	}
	if o := <-followed; o.ErrorCode != api.ErrorCodeCancelled || o.EndState.Failed == nil || !o.EndState.Failed.Up.Provision {
		t.Errorf("cancelled up: %+v", o)
	}

	// up with flat options over the socket, then down, clear, generate in
	// the object shape, up with generate_artefacts.
	id = action(sock, "lab", `{"command":"up","rerun_scripts":true}`, 202, docAccepts)
	tb.exec.runUp(t)
	if _, o := c.outcomeOf(t, tcp, id); o.ErrorCode != 0 || !o.EndState.Is(api.StateUp) {
		t.Errorf("up: %+v", o)
	}
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/lab", want: 409})
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/lab?force=false", want: 409})
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/lab?force=yes", want: 400, doc: docRejects})
	for _, body := range []string{`{"command":{"down":null}}`, `{"command":"clear_artefacts"}`} {
		id = action(tcp, "lab", body, 202, docAccepts)
		if _, o := c.outcomeOf(t, tcp, id); o.ErrorCode != 0 || !o.EndState.Is(api.StateDown) {
			t.Errorf("%s: %+v", body, o)
		}
	}
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/lab/state", want: 404})
	id = action(tcp, "lab", `{"command":{"generate-artefacts":{}}}`, 202, docAccepts)
	c.outcomeOf(t, tcp, id)
	id = action(tcp, "lab", `{"command":"up","generate_artefacts":true,"provision":true}`, 202, docAccepts)
	tb.exec.runUp(t)
	if _, o := c.outcomeOf(t, tcp, id); !o.EndState.Is(api.StateUp) {
		t.Errorf("up after generate: %+v", o)
	}
	var plan api.Plan
	c.doJSON(t, tcp, call{method: "GET", path: "/api/deployments/lab/plan", want: 200}, &plan)
	if len(plan.Changes) != 1 || plan.Changes[0].Op != api.OpRemake {
		t.Errorf("plan: %+v", plan)
	}
	os.WriteFile(filepath.Join(good, "kvm-compose.yaml"), []byte(badTopology), 0o644)
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/lab/plan", want: 422})
	os.WriteFile(filepath.Join(good, "kvm-compose.yaml"), []byte(goodTopology), 0o644)

	monitorAfterUp(t, c, tcp)

	// Snapshot reads: of a VM, of a namespace (422), of nobody.
	var snaps api.SnapshotList
	c.doJSON(t, sock, call{method: "GET", path: "/api/deployments/lab/guests/vm1/snapshots", want: 200}, &snaps)
	if snaps.Guest != "vm1" || len(snaps.Snapshots) != 1 || snaps.Snapshots[0].Summary() != fakeSnapshot.Summary() {
		t.Errorf("snapshots of vm1: %+v", snaps)
	}
	for _, x := range []call{
		{path: "/api/deployments/lab/guests/vm1/snapshots/s1", want: 200},
		{path: "/api/deployments/lab/guests/vm1/snapshots/nope", want: 404},
		{path: "/api/deployments/lab/guests/web/snapshots", want: 422},
		{path: "/api/deployments/lab/guests/web/snapshots/s1", want: 422},
		{path: "/api/deployments/lab/guests/nobody/snapshots", want: 404},
		{path: "/api/deployments/lab/guests/nobody/snapshots/s1", want: 404},
	} {
		x.method = "GET"
		c.do(t, tcp, x)
	}
	c.doJSON(t, tcp, call{method: "GET", path: "/api/deployments/lab", want: 200}, &dep)
	if !dep.State.Is(api.StateUp) {
		t.Errorf("after reading snapshots the deployment is %v, want up", dep.State)
	}
	// Snapshot actions the engine refuses before recording them.
	action(tcp, "lab", `{"command":"snapshot","snapshot":{"sub_command":"create","guest":"web","name":"s1"}}`, 422, docAccepts)
	action(tcp, "lab", `{"command":"snapshot","snapshot":{"sub_command":"delete","guest":"nobody","name":"s1"}}`, 404, docAccepts)

	// Failed snapshots: one whose outcome fits a close reason, one too long.
	id = action(tcp, "lab", `{"command":"snapshot","snapshot":{"sub_command":"create","guest":"vm1","name":"s1"}}`, 202, docAccepts)
	if _, o := c.outcomeOf(t, tcp, id); o.ErrorCode != api.ErrorCodeFailed || !o.EndState.Is(api.StateUp) {
		t.Errorf("snapshot: %+v", o)
	}
	long := strings.Repeat("g", 63)
	id = action(tcp, "lab", `{"command":{"snapshot":{"snapshot_cmd":{"sub_command":"restore","guest":"`+long+`","name":"`+long+`"}}}}`, 202, docAccepts)
	if _, o := c.outcomeOf(t, tcp, id); o.ErrorCode != api.ErrorCodeFailed || !o.EndState.Is(api.StateUp) {
		t.Errorf("long snapshot: %+v", o)
	}
	var idx api.LogIndex
	c.doJSON(t, tcp, call{method: "GET", path: "/api/deployments/lab/logs", want: 200}, &idx)
	if len(idx) != 9 {
		t.Errorf("logs index has %d actions, want 9", len(idx))
	}
	var afterSnap api.Deployment
	c.doJSON(t, tcp, call{method: "GET", path: "/api/deployments/lab", want: 200}, &afterSnap)
	if !afterSnap.State.Is(api.StateUp) {
		t.Errorf("after failed snapshots the deployment is %v, want up", afterSnap.State)
	}

	// A late follower, and handshakes the websocket library refuses.
	if _, o := c.outcomeOf(t, sock, cancelled); o.ErrorCode != api.ErrorCodeCancelled {
		t.Errorf("late follower: %+v", o)
	}
	stream := "/api/logs/" + cancelled + "/stream"
	c.do(t, tcp, call{method: "GET", path: stream, want: 426, doc: docRejects})
	badVersion := wsHeaders()
	badVersion.Set("Sec-Websocket-Version", "12")
	c.do(t, tcp, call{method: "GET", path: stream, header: badVersion, want: 400, doc: docRejects})
	crossOrigin := wsHeaders()
	crossOrigin.Set("Origin", "http://elsewhere.example")
	c.do(t, tcp, call{method: "GET", path: stream, header: crossOrigin, want: 403})

	liveExchanges(t, c, tb)
	powerExchanges(t, c, tb)

	// Deletion.
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/lab?force=true", want: 204})
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/lab", want: 404})
	c.do(t, tcp, call{method: "DELETE", path: "/api/deployments/Lab", want: 400, doc: docRejects})
	c.do(t, sock, call{method: "DELETE", path: "/api/deployments/bad", want: 204})

	clusterExchanges(t, c, tb)
	imageCalls(t, c, tb)

	// Every route but /healthz wants the token over TCP.
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			if path == "/healthz" {
				continue
			}
			p := strings.NewReplacer("{name}", "lab", "{uuid}", cancelled, "{guest}", "vm1", "{snapshot}", "s1", "{iface}", "eth0").Replace(path)
			c.do(t, anon, call{method: method, path: p, header: wsHeaders(), want: 401, doc: docRejects})
		}
	}

	validateCalls(t, c, tcp)
	sharingExchanges(t, c, tb)
	filesCalls(t, c, tcp)
	realFaults(t, c, tb, good)
	liveFaults(t, c, tb)
	powerFaults(t, c, tb)

	// A server assembled without a snapshot reader says so.
	plain := startServerWith(t, false)
	c.do(t, plain.tcp, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "lab", ProjectLocation: good}), want: 201})
	c.do(t, plain.tcp, call{method: "GET", path: "/api/deployments/lab/guests/vm1/snapshots", want: 503})
	c.do(t, plain.tcp, call{method: "GET", path: "/api/deployments/lab/guests/vm1/snapshots/s1", want: 503})
	c.do(t, plain.tcp, call{method: "GET", path: "/api/deployments/lab/plan", want: 503})
	c.do(t, plain.tcp, call{method: "GET", path: "/api/deployments/lab/guests", want: 503})
	liveUnavailable(t, c, plain)
	powerUnavailable(t, c, plain)

	for _, u := range c.unseen() {
		t.Errorf("documented but never answered: %s", u)
	}
}

// realFaults breaks records behind the server's back: those are the 500s.
func realFaults(t *testing.T, c *contract, tb *testbed, good string) {
	tcp := tb.tcp
	c.do(t, tcp, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "broken", ProjectLocation: good}), want: 201})
	var a api.ActionAccepted
	c.doJSON(t, tcp, call{method: "POST", path: "/api/deployments/broken/action", body: `{"command":"generate-artefacts"}`, want: 202}, &a)
	c.outcomeOf(t, tcp, a.UUID)
	var e api.LogEntry
	c.doJSON(t, tcp, call{method: "GET", path: "/api/logs/" + a.UUID, want: 200}, &e)

	garbage := []byte("{not json")
	mustWrite := func(path string) {
		if err := os.WriteFile(path, garbage, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(filepath.Join(good, "artefacts", "state.json"))
	mustWrite(filepath.Join(tb.cfg.GeneratedDir(), "broken", "state.json"))
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/broken/state", want: 500})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/broken/guests/web/snapshots", want: 500})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/broken/guests/web/snapshots/s1", want: 500})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/broken/guests", want: 500})
	c.do(t, tcp, call{method: "GET", path: "/api/monitor/deployments/broken/guests/web", want: 500})
	if err := os.Remove(e.LogPath); err != nil {
		t.Fatal(err)
	}
	c.do(t, tcp, call{method: "GET", path: "/api/logs/" + a.UUID + "/text", want: 500})

	mustWrite(filepath.Join(tb.cfg.DeploymentsDir(), "broken-logs.json"))
	c.do(t, tcp, call{method: "GET", path: "/api/logs/" + a.UUID, want: 500})
	c.do(t, tcp, call{method: "GET", path: "/api/logs/" + a.UUID + "/stream", header: wsHeaders(), want: 500})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/broken/logs", want: 500})
	c.do(t, tcp, call{method: "GET", path: "/api/deployments/broken/actions", want: 500})

	mustWrite(filepath.Join(tb.cfg.DeploymentsDir(), "broken.json"))
	for _, x := range []call{
		{method: "GET", path: "/api/deployments"},
		{method: "GET", path: "/api/deployments/broken"},
		{method: "GET", path: "/api/deployments/broken/plan"},
		{method: "PUT", path: "/api/deployments/broken", body: jsonBody(api.UpdateDeployment{ProjectLocation: good})},
		{method: "DELETE", path: "/api/deployments/broken"},
		{method: "POST", path: "/api/deployments/broken/action", body: `{"command":"down"}`},
		{method: "POST", path: "/api/deployments/broken/cancel"},
	} {
		x.want = 500
		c.do(t, tcp, x)
	}

	// A file where the deployments folder was: nothing can be written.
	if err := os.RemoveAll(tb.cfg.DeploymentsDir()); err != nil {
		t.Fatal(err)
	}
	mustWrite(tb.cfg.DeploymentsDir())
	c.do(t, tcp, call{method: "POST", path: "/api/deployments", body: jsonBody(api.NewDeployment{Name: "late", ProjectLocation: good}), want: 500})
}

// hasLineEnding reports whether a log line ends in words (lines start with
// a time).
func hasLineEnding(lines []string, words string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, words) })
}
