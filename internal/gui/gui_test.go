package gui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// fakeRecords is a hand-written store for the page tests.
type fakeRecords struct {
	deps map[string]api.Deployment
	logs map[string]api.LogIndex
}

func (f *fakeRecords) Deployments(ctx context.Context) ([]api.Deployment, error) {
	var out []api.Deployment
	for _, d := range f.deps {
		out = append(out, d)
	}
	return out, nil
}

func (f *fakeRecords) Deployment(ctx context.Context, name string) (api.Deployment, error) {
	d, ok := f.deps[name]
	if !ok {
		return d, fmt.Errorf("deployment %s: %w", name, api.ErrNotFound)
	}
	return d, nil
}

func (f *fakeRecords) LogIndex(ctx context.Context, name string) (api.LogIndex, error) {
	return f.logs[name], nil
}

// fakeAPI answers the in-process create like the REST API, recording it.
type fakeAPI struct{ created []string }

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.created = append(a.created, string(body))
	w.WriteHeader(http.StatusCreated)
}

// bigTopology is a kvm-compose.yaml of n guests spread over switches.
func bigTopology(n, switches int) string {
	var b strings.Builder
	b.WriteString("machines:\n")
	for i := 0; i < n; i++ {
		sw := i % switches
		fmt.Fprintf(&b, "  - name: g%d\n    network: [{switch: sw%d, ip: 10.%d.%d.%d}]\n", i, sw, sw, i/200, 10+i%200)
	}
	b.WriteString("network:\n  switches:\n")
	for s := 0; s < switches; s++ {
		fmt.Fprintf(&b, "    sw%d: {subnet: 10.%d.0.0/16}\n", s, s)
	}
	return b.String()
}

// generated writes a project holding the state of src.
func generated(t testing.TB, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := topology.Generate(topology.Options{Deployment: name, ProjectDir: dir,
		Hosts: []topology.Host{{Name: "main", Main: true}, {Name: "h2"}, {Name: "h3"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := topology.WriteState(topology.StatePath(dir), st); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newTestGUI(t testing.TB, opts Options) (*httptest.Server, *fakeRecords, *fakeAPI) {
	t.Helper()
	rec := &fakeRecords{deps: map[string]api.Deployment{}, logs: map[string]api.LogIndex{}}
	fa := &fakeAPI{}
	opts.Records, opts.API = rec, fa
	if opts.ProjectsDir == "" {
		opts.ProjectsDir = t.TempDir()
	}
	opts.Status = func() api.ServerStatus { return api.ServerStatus{Hostname: "labhost", Mode: "main", Version: "test"} }
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { g.Login(w, 200, "/", "") })
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, rec, fa
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPages(t *testing.T) {
	ts, rec, _ := newTestGUI(t, Options{})
	dir := generated(t, "lab", bigTopology(20, 3))
	id := "3f1c9c7e-0000-4000-8000-000000000001"
	code, ms := 0, int64(1500)
	rec.deps["lab"] = api.Deployment{Name: "lab", ProjectLocation: dir, State: api.StateIsUp, LastActionUUID: &id}
	rec.deps["empty"] = api.Deployment{Name: "empty", ProjectLocation: t.TempDir()}
	rec.logs["lab"] = api.LogIndex{id: {Command: api.Command{Name: api.CmdUp}, ErrorCode: &code, DurationMS: &ms, ExecutionTime: time.Now()}}
	for _, tc := range []struct {
		path string
		want int
		has  []string
	}{
		{"/", 200, []string{"labhost", `href="/deployments/lab"`, `/api/monitor/host?format=svg`, "members-table"}},
		{"/deployments", 200, []string{`data-state-of="lab"`, "empty"}},
		{"/deployments/new", 200, []string{`id="yaml"`, `type="file"`}},
		{"/deployments/lab", 200, []string{`<svg`, `id="topo-guest-g19"`, `id="topo-switch-sw2"`, `data-guest="g7"`,
			`/api/monitor/deployments/lab/guests/g3?format=svg`, `data-action="up"`, `data-action="cancel"`, "success", "1.5s", `data-log="` + id,
			`id="btn-plan"`, `id="btn-apply"`, `data-snapshot="restore"`, `data-snapshots="">g0 (netns)`, `/static/vendor/xterm.js`, `/static/console.js`,
			`aria-label="Console of g7"`, `id="topo-link-g7-eth0"`, `data-confirm=`, `id="files-card"`, `<label for="snap-guest">`, `data-power="stopped"`, `data-power="running"`,
			// The log card opens on the last action's log.
			`data-last="` + id + `"`, `data-last-command="up"`}},
		{"/deployments/empty", 200, []string{"press Generate"}},
		{"/deployments/nope", 404, []string{"nope"}},
		{"/cluster", 200, []string{"members-table"}},
		{"/config", 200, []string{"/api/config/host", `<label for="host-config"`}},
		{"/login", 200, []string{`name="token"`}},
		{"/static/app.js", 200, []string{"/api/validate/yaml"}},
		{"/static/console.js", 200, []string{"new Terminal("}},
		{"/favicon.ico", 200, []string{"<svg"}},
	} {
		got, body := get(t, ts.URL+tc.path)
		if got != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, got, tc.want)
		}
		if tc.path == "/login" && (strings.Contains(body, "Log out") || strings.Contains(body, "<nav") || strings.Contains(body, "app.js") && strings.Contains(body, "not-live")) {
			t.Errorf("the login page shows the nav, Log out or the live banner:\n%s", body)
		}
		if tc.path == "/deployments/new" && !strings.Contains(body, `pattern="[a-z][a-z0-9\-]{0,62}"`) {
			t.Errorf("the name field's pattern is not valid under the v flag")
		}
		for _, s := range tc.has {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s: no %q in the page", tc.path, s)
			}
		}
	}
}

func TestTopologyColoursHosts(t *testing.T) {
	dir := generated(t, "lab", bigTopology(6, 2))
	st, err := topology.ReadState(topology.StatePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	svg := string(drawTopology(st))
	for _, c := range palette[:3] {
		if !strings.Contains(svg, `fill="`+c+`"`) {
			t.Errorf("no guest coloured %s (three hosts)", c)
		}
	}
	if strings.Count(svg, `class="g guest"`) != 6 || strings.Count(svg, `class="switch"`) != 2 {
		t.Errorf("want 6 guests and 2 switches drawn:\n%s", svg)
	}
}

func TestCreate(t *testing.T) {
	projects := t.TempDir()
	ts, rec, fa := newTestGUI(t, Options{ProjectsDir: projects})
	rec.deps["taken"] = api.Deployment{Name: "taken"}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(name, yaml string) (int, string, string) {
		resp, err := noRedirect.PostForm(ts.URL+"/deployments/new", url.Values{"name": {name}, "yaml": {yaml}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(b)
	}
	bad := "machines:\n  - name: web\n    network: [{switch: sw0, ip: 10.1.0.10}]\nnetwork:\n  switches:\n    sw0: {subnet: 10.0.0.0/24}\n"
	code, _, body := post("lab", bad)
	if code != 422 || !strings.Contains(body, `data-line="3"`) || !strings.Contains(body, "line 3") || !strings.Contains(body, "10.1.0.10") {
		t.Errorf("bad YAML: %d\n%s", code, body)
	}
	if code, _, _ := post("Bad Name", bigTopology(1, 1)); code != 400 {
		t.Errorf("bad name: %d", code)
	}
	if code, _, _ := post("taken", bigTopology(1, 1)); code != 409 {
		t.Errorf("taken name: %d", code)
	}
	if len(fa.created) != 0 {
		t.Fatalf("refused forms created %v", fa.created)
	}
	code, loc, _ := post("lab", bigTopology(2, 1))
	if code != 303 || loc != "/deployments/lab" {
		t.Fatalf("good YAML: %d to %q", code, loc)
	}
	// An uploaded file wins over the text field.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("name", "up")
	mw.WriteField("yaml", "not: [valid")
	fw, _ := mw.CreateFormFile("file", "kvm-compose.yaml")
	fw.Write([]byte(bigTopology(3, 1)))
	mw.Close()
	resp, err := noRedirect.Post(ts.URL+"/deployments/new", mw.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if up, _ := os.ReadFile(filepath.Join(projects, "up", "kvm-compose.yaml")); string(up) != bigTopology(3, 1) {
		t.Fatalf("uploaded project file: %q", up)
	}
	written, err := os.ReadFile(filepath.Join(projects, "lab", "kvm-compose.yaml"))
	if err != nil || string(written) != bigTopology(2, 1) {
		t.Fatalf("project file: %q, %v", written, err)
	}
	if len(fa.created) < 2 || !strings.Contains(fa.created[0], filepath.Join(projects, "lab")) {
		t.Fatalf("API create: %v", fa.created)
	}
	// A textarea's CRLF line endings are written as LF.
	if code, _, _ := post("crlf", strings.ReplaceAll(bigTopology(1, 1), "\n", "\r\n")); code != 303 {
		t.Fatalf("CRLF YAML: %d", code)
	}
	if got, _ := os.ReadFile(filepath.Join(projects, "crlf", "kvm-compose.yaml")); string(got) != bigTopology(1, 1) {
		t.Errorf("CRLF YAML written as %q", got)
	}
	// A setup script the YAML names must come with it, under Project files.
	withScript := strings.Replace(bigTopology(1, 1), "    network:", "    netns: {setup_script: setup.sh}\n    network:", 1)
	if code, _, body := post("noscript", withScript); code != 422 || !strings.Contains(body, "setup.sh does not exist in the project folder") {
		t.Errorf("missing script: %d\n%s", code, body)
	}
	if _, err := os.Stat(filepath.Join(projects, "noscript")); err == nil {
		t.Error("the refused project's folder is left behind")
	}
	form.Reset()
	mw = multipart.NewWriter(&form)
	mw.WriteField("name", "script")
	mw.WriteField("yaml", withScript)
	fw, _ = mw.CreateFormFile("files", "setup.sh")
	fw.Write([]byte("#!/bin/sh\r\necho hi\r\n"))
	mw.Close()
	resp, err = noRedirect.Post(ts.URL+"/deployments/new", mw.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Fatalf("with its script: %d", resp.StatusCode)
	}
	if info, err := os.Stat(filepath.Join(projects, "script", "setup.sh")); err != nil || info.Mode().Perm()&0o100 == 0 {
		t.Errorf("the uploaded script: %v %v", info, err)
	}
	if got, _ := os.ReadFile(filepath.Join(projects, "script", "setup.sh")); string(got) != "#!/bin/sh\necho hi\n" {
		t.Errorf("the uploaded script: %q", got)
	}
	delete(rec.deps, "crlf")
	delete(rec.deps, "script")
	// The folder of an earlier deployment of that name is left alone.
	delete(rec.deps, "lab")
	if code, _, _ := post("lab", bigTopology(4, 1)); code != 303 {
		t.Fatalf("second lab: %d", code)
	}
	if again, _ := os.ReadFile(filepath.Join(projects, "lab-2", "kvm-compose.yaml")); string(again) != bigTopology(4, 1) {
		t.Fatalf("second lab's folder: %q", again)
	}
	if first, _ := os.ReadFile(filepath.Join(projects, "lab", "kvm-compose.yaml")); string(first) != bigTopology(2, 1) {
		t.Fatal("the earlier folder was overwritten")
	}
}

// copyTree copies the package's templates and static files to dst.
func copyTree(t *testing.T, dst string) {
	t.Helper()
	err := fs.WalkDir(embedded, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(p)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, p), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDevModeReadsTemplatesOnEveryRequest(t *testing.T) {
	src := t.TempDir()
	copyTree(t, src)
	ts, _, _ := newTestGUI(t, Options{Dev: true, DevDir: src})
	if _, body := get(t, ts.URL+"/deployments"); strings.Contains(body, "Edited in dev mode") {
		t.Fatal("marker present before the edit")
	}
	page := filepath.Join(src, "templates", "deployments.html")
	data, _ := os.ReadFile(page)
	edited := strings.Replace(string(data), "<h1>Deployments</h1>", "<h1>Deployments</h1><p>Edited in dev mode</p>", 1)
	if err := os.WriteFile(page, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, ts.URL+"/deployments"); !strings.Contains(body, "Edited in dev mode") {
		t.Fatal("the edited template did not show on the next request")
	}
	os.WriteFile(filepath.Join(src, "static", "style.css"), []byte("/* edited */"), 0o644)
	if _, body := get(t, ts.URL+"/static/style.css"); body != "/* edited */" {
		t.Fatalf("static file not re-read: %q", body)
	}
	// The embedded copy is what a normal build serves.
	plain, _, _ := newTestGUI(t, Options{})
	if _, body := get(t, plain.URL+"/deployments"); strings.Contains(body, "Edited in dev mode") {
		t.Fatal("non-dev GUI read the source tree")
	}
}

func TestDevDirDefaultsToTheSourceTree(t *testing.T) {
	if SourceDir() == "" {
		t.Skip("built without the source tree")
	}
	g, err := New(Options{Dev: true})
	if err != nil || g.opts.DevDir != SourceDir() {
		t.Fatalf("dev dir %q, %v", g.opts.DevDir, err)
	}
	if _, err := New(Options{Dev: true, DevDir: t.TempDir()}); err == nil {
		t.Fatal("a dev folder without templates was accepted")
	}
}

// BenchmarkDeploymentPage200 is the server time of the deployment page of a
// deployment with 200 guests on 4 switches (state read, topology laid out,
// page rendered), with p50 and p99 of the single requests.
func BenchmarkDeploymentPage200(b *testing.B) {
	rec := &fakeRecords{deps: map[string]api.Deployment{}}
	dir := generated(b, "big", bigTopology(200, 4))
	rec.deps["big"] = api.Deployment{Name: "big", ProjectLocation: dir, State: api.StateIsUp}
	g, _ := New(Options{Records: rec, Status: func() api.ServerStatus { return api.ServerStatus{} }})
	req := httptest.NewRequest("GET", "/deployments/big", nil)
	req.SetPathValue("name", "big")
	// 100 requests per iteration, so that p99 means something even at -benchtime 3x.
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 100; j++ {
			w := httptest.NewRecorder()
			start := time.Now()
			g.deployment(w, req)
			took = append(took, time.Since(start))
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(took[(len(took)*99)/100].Microseconds())/1000, "p99_ms")
}

// BenchmarkTopology200 is the layout and SVG of 200 guests alone.
func BenchmarkTopology200(b *testing.B) {
	st, err := topology.ReadState(topology.StatePath(generated(b, "big", bigTopology(200, 4))))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		drawTopology(st)
	}
}

// A failed state a cancelled action left reads cancelled(up) on every page,
// as the CLI shows it; one a failure left stays failed(up).
func TestPagesShowCancelledState(t *testing.T) {
	ts, rec, _ := newTestGUI(t, Options{})
	failedUp := api.DeploymentState{Kind: api.StateFailed, Failed: &api.Command{Name: api.CmdUp}}
	for name, code := range map[string]int{"cut": api.ErrorCodeCancelled, "broke": api.ErrorCodeFailed} {
		id := "3f1c9c7e-0000-4000-8000-00000000000" + fmt.Sprint(code)
		rec.deps[name] = api.Deployment{Name: name, ProjectLocation: t.TempDir(), State: failedUp, LastActionUUID: &id}
		rec.logs[name] = api.LogIndex{id: {Command: api.Command{Name: api.CmdUp}, ErrorCode: &code, EndState: &failedUp, ExecutionTime: time.Now()}}
	}
	for _, path := range []string{"/", "/deployments", "/deployments/cut", "/deployments/broke"} {
		_, body := get(t, ts.URL+path)
		for name, want := range map[string]string{"cut": "cancelled(up)", "broke": "failed(up)"} {
			if path == "/deployments/cut" && name == "broke" || path == "/deployments/broke" && name == "cut" {
				continue
			}
			if !strings.Contains(body, `data-state-of="`+name+`">`+want+`</span>`) {
				t.Errorf("GET %s: %s's state is not %s", path, name, want)
			}
		}
	}
}
