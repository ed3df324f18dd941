package agent_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

func TestRequireSecret(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	tests := []struct {
		name, secret, header string
		want                 int
	}{
		{"no header", "s3cret", "", http.StatusUnauthorized},
		{"wrong secret", "s3cret", "Bearer s3cre", http.StatusUnauthorized},
		{"longer secret", "s3cret", "Bearer s3cretx", http.StatusUnauthorized},
		{"other scheme", "s3cret", "Basic s3cret", http.StatusUnauthorized},
		{"bearer without secret", "s3cret", "Bearer ", http.StatusUnauthorized},
		{"no secret configured", "", "Bearer ", http.StatusUnauthorized},
		{"right secret", "s3cret", "Bearer s3cret", http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/api/agent/health", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			agent.RequireSecret(tt.secret)(ok).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

// fakeDriver is a hand-written guest driver for the unit tests.
type fakeDriver struct {
	mu      sync.Mutex
	guests  map[string]bool
	create  error
	script  func(ctx context.Context, path string, log actlog.Log) error
	scripts []string // content of each script run
	found   map[string]guest.Found
}

func (f *fakeDriver) Kind() string                     { return topology.KindNetns }
func (f *fakeDriver) Capabilities() guest.Capabilities { return guest.Capabilities{Find: true} }
func (f *fakeDriver) Find(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Found, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd, ok := f.found[g.Name]; ok {
		return fd, nil
	}
	if f.guests[g.Name] {
		return guest.Found{Presence: guest.Ours, Complete: true}, nil
	}
	return guest.Found{}, nil
}

var _ guest.Finder = (*fakeDriver)(nil)

func (f *fakeDriver) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.guests[g.Name], nil
}
func (f *fakeDriver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	if f.create != nil {
		return false, f.create
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.guests[g.Name] = true
	log.Printf("made %s", g.Name)
	return true, nil
}
func (f *fakeDriver) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, script string, log actlog.Log) error {
	path, err := dep.Files.Path(ctx, script)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.scripts = append(f.scripts, string(data))
	f.mu.Unlock()
	if f.script != nil {
		return f.script(ctx, path, log)
	}
	return nil
}
func (f *fakeDriver) Destroy(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.guests, g.Name)
	return nil
}

type fixture struct {
	drv    *fakeDriver
	srv    *httptest.Server
	remote *agent.RemoteHost
	data   string
}

func newFixture(t *testing.T, ropts agent.RemoteOptions, keepAlive time.Duration) *fixture {
	t.Helper()
	f := &fixture{drv: &fakeDriver{guests: map[string]bool{}}, data: t.TempDir()}
	f.srv = httptest.NewServer(agent.RequireSecret("sec")(agent.Handler(agent.Options{
		Name: "c1", DataDir: f.data, Drivers: guest.NewRegistry(f.drv), KeepAlive: keepAlive,
	})))
	t.Cleanup(f.srv.Close)
	ropts.Name, ropts.BaseURL, ropts.Secret, ropts.Client = "c1", f.srv.URL, "sec", f.srv.Client()
	var err error
	if f.remote, err = agent.NewRemoteHost(ropts); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) driver(t *testing.T) guest.Driver {
	t.Helper()
	drv, err := f.remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	return drv
}

func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		write(t, filepath.Join(dir, name), content, 0o755)
	}
	return dir
}

func TestHealthAndCapabilities(t *testing.T) {
	f := newFixture(t, agent.RemoteOptions{}, 0)
	h, err := f.remote.Health(context.Background())
	if err != nil || h.Name != "c1" || h.Time == "" {
		t.Fatalf("health %+v, %v", h, err)
	}
	if _, err := f.remote.Driver("libvirt"); err == nil || !strings.Contains(err.Error(), "netns") {
		t.Errorf("driver of a kind the client has not: %v, want an error naming its kinds", err)
	}
}

func TestScriptOutputAndErrors(t *testing.T) {
	f := newFixture(t, agent.RemoteOptions{}, 0)
	f.drv.script = func(ctx context.Context, path string, log actlog.Log) error {
		w := log.Writer("[g1] ")
		fmt.Fprint(w, "one\ntwo\nunterminated")
		w.Close()
		return errors.New("exit status 3")
	}
	dir := project(t, map[string]string{"s.sh": "#!/bin/sh\necho hi\n"})
	dep := guest.Deployment{Name: "d1", Files: f.remote.Files(dir)}
	g := &topology.Guest{Name: "g1", Kind: topology.KindNetns}
	log := &guesttest.Log{}
	err := f.driver(t).RunScript(context.Background(), dep, g, filepath.Join(dir, "s.sh"), log)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("script error: %v, want the client's exit status, not unreachable", err)
	}
	if want := "[c1] [g1] one\n[c1] [g1] two\n[c1] [g1] unterminated"; log.Text() != want {
		t.Errorf("log:\n%s\nwant:\n%s", log.Text(), want)
	}
	if len(f.drv.scripts) != 1 || f.drv.scripts[0] != "#!/bin/sh\necho hi\n" {
		t.Errorf("client ran %q", f.drv.scripts)
	}
	// Path on the main answers where the client keeps the file.
	p, err := dep.Files.Path(context.Background(), "s.sh")
	if err != nil || filepath.Dir(p) != filepath.Join(f.data, "cache", "files") {
		t.Errorf("client-side path %q, %v; want in the client's cache", p, err)
	}

	// A file outside the project folder is refused on the main, with the
	// sentinel, before anything is sent.
	outside := filepath.Join(t.TempDir(), "x.sh")
	write(t, outside, "#!/bin/sh\n", 0o755)
	err = f.driver(t).RunScript(context.Background(), dep, g, outside, log)
	if !errors.Is(err, guest.ErrOutsideProject) {
		t.Errorf("script outside the project: %v, want ErrOutsideProject", err)
	}
	// A sentinel the client's driver returns survives the wire.
	f.drv.script = func(context.Context, string, actlog.Log) error {
		return fmt.Errorf("nope: %w", guest.ErrUnsupported)
	}
	if err := f.driver(t).RunScript(context.Background(), dep, g, filepath.Join(dir, "s.sh"), log); !errors.Is(err, guest.ErrUnsupported) {
		t.Errorf("remote sentinel: %v, want ErrUnsupported", err)
	}
}

func TestFailedCreateLeavesNoRecord(t *testing.T) {
	f := newFixture(t, agent.RemoteOptions{}, 0)
	f.drv.create = errors.New("no room")
	dep := guest.Deployment{Name: "d1", Files: f.remote.Files(t.TempDir())}
	g := &topology.Guest{Name: "g1", Kind: topology.KindNetns, Interfaces: []topology.Interface{{Bridge: "br-x"}}}
	if _, err := f.driver(t).Create(context.Background(), dep, g, &guesttest.Log{}); err == nil || !strings.Contains(err.Error(), "no room") {
		t.Fatalf("create: %v, want the client's error", err)
	}
	rec, err := f.remote.Deployed(context.Background(), "d1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Guests) != 0 {
		t.Errorf("record after a failed create: %+v", rec)
	}
	f.drv.create = nil
	created, err := f.driver(t).Create(context.Background(), dep, g, &guesttest.Log{})
	if err != nil || !created {
		t.Fatalf("create: %v, %v", created, err)
	}
	if rec, _ = f.remote.Deployed(context.Background(), "d1"); len(rec.Guests) != 1 || rec.Guests["g1"].Pending {
		t.Errorf("record after create: %+v, want g1 made", rec)
	}
}

func TestWrongSecretIsUnauthorized(t *testing.T) {
	f := newFixture(t, agent.RemoteOptions{}, 0)
	other, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: f.srv.URL, Secret: "not it", Client: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Health(context.Background()); !errors.Is(err, agent.ErrUnauthorized) || errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("health with a wrong secret: %v, want ErrUnauthorized", err)
	}
	if _, err := other.Network().HasBridge(context.Background(), "br0"); !errors.Is(err, agent.ErrUnauthorized) {
		t.Errorf("bridge with a wrong secret: %v, want ErrUnauthorized", err)
	}
}

func TestUnreachable(t *testing.T) {
	f := newFixture(t, agent.RemoteOptions{Timeout: time.Second}, 0)
	f.srv.Close()
	ctx := context.Background()
	if _, err := f.remote.Health(ctx); !errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("health of a stopped client: %v, want ErrUnreachable", err)
	}
	if _, err := f.remote.Network().EnsureBridge(ctx, "br0"); !errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("bridge on a stopped client: %v, want ErrUnreachable", err)
	}
	if _, err := f.remote.Driver(topology.KindNetns); !errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("driver of a stopped client: %v, want ErrUnreachable", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.remote.Health(cctx); !errors.Is(err, context.Canceled) || errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("health with a cancelled context: %v, want context.Canceled only", err)
	}
}

// TestHungClient: a client that accepts the call and then says nothing is
// unreachable after the idle timeout, not a hang; a slow but live one (keep-
// alive lines) is waited for.
func TestHungClient(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/capabilities") {
			fmt.Fprint(w, `{"kinds":{"netns":{}}}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/health") {
			<-release
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, `{}`)
		w.(http.Flusher).Flush()
		<-release
	}))
	t.Cleanup(func() { close(release); hung.Close() })
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: hung.URL, Client: hung.Client(), Timeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := remote.Health(context.Background()); !errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("hung health: %v, want ErrUnreachable", err)
	}
	drv, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	dep := guest.Deployment{Name: "d1", Files: remote.Files(t.TempDir())}
	if _, err := drv.Exists(context.Background(), dep, &topology.Guest{Name: "g1", Kind: topology.KindNetns}); !errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("hung stream: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hung calls took %v", d)
	}

	f := newFixture(t, agent.RemoteOptions{IdleTimeout: 300 * time.Millisecond}, 50*time.Millisecond)
	f.drv.script = func(ctx context.Context, path string, log actlog.Log) error {
		select {
		case <-time.After(time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	dir := project(t, map[string]string{"slow.sh": "sleep\n"})
	dep = guest.Deployment{Name: "d1", Files: f.remote.Files(dir)}
	if err := f.driver(t).RunScript(context.Background(), dep, &topology.Guest{Name: "g1", Kind: topology.KindNetns}, "slow.sh", &guesttest.Log{}); err != nil {
		t.Errorf("slow script with keep-alives: %v", err)
	}
}

func TestFilesAreVerified(t *testing.T) {
	f := newFixture(t, agent.RemoteOptions{}, 0)
	content := "some content\n"
	sum := sha256.Sum256([]byte(content))
	hash := hex.EncodeToString(sum[:])
	call := func(method, name, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.URL+"/api/agent/files/"+name, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer sec")
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		method, name, body string
		want               int
	}{
		{http.MethodHead, hash, "", http.StatusNotFound},
		{http.MethodPut, hash, "other content\n", http.StatusBadRequest},
		{http.MethodHead, hash, "", http.StatusNotFound},
		{http.MethodPut, "../../etc/passwd", content, http.StatusNotFound},
		{http.MethodPut, "abc", content, http.StatusBadRequest},
		{http.MethodPut, strings.ToUpper(hash), content, http.StatusBadRequest},
		{http.MethodPut, hash, content, http.StatusCreated},
		{http.MethodHead, hash, "", http.StatusOK},
	}
	for _, s := range steps {
		if got := call(s.method, s.name, s.body); got != s.want {
			t.Errorf("%s %s: %d, want %d", s.method, s.name, got, s.want)
		}
	}
	data, err := os.ReadFile(filepath.Join(f.data, "cache", "files", hash))
	if err != nil || string(data) != content {
		t.Errorf("cached file: %q, %v", data, err)
	}
}

// TestFindThroughTheAgent: what the client's driver finds of a guest, and
// whose it is, reaches the main: a stopped object of another server is
// foreign there too.
func TestFindThroughTheAgent(t *testing.T) {
	f := newFixture(t, agent.RemoteOptions{}, 0)
	f.drv.found = map[string]guest.Found{"g1": {Presence: guest.Foreign, What: "stopped container of another server"}}
	dep := guest.Deployment{Name: "lab", Files: f.remote.Files(t.TempDir())}
	got, err := guest.Find(context.Background(), f.driver(t), dep, &topology.Guest{Name: "g1", Kind: topology.KindNetns})
	if err != nil || got.Presence != guest.Foreign || got.What != "stopped container of another server" {
		t.Fatalf("find through the agent: %+v, %v", got, err)
	}
}
