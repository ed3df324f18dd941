package gui_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/testbedos/testbedos/internal/actions"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/topology"
)

// realServer is a testbedos-server with token auth on TCP, as run.
type realServer struct {
	base, token string
	cfg         config.Server
	exec        actions.Executor
	stop        func() error
}

func startReal(t testing.TB, exec actions.Executor) *realServer {
	t.Helper()
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", DB: "file", Auth: true,
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 100,
		MonitorInterval: 200 * time.Millisecond,
	}
	s := &realServer{cfg: cfg, exec: exec}
	s.start(t)
	t.Cleanup(func() {
		if s.stop == nil {
			return
		}
		if err := s.stop(); err != nil {
			t.Errorf("server stop: %v", err)
		}
	})
	return s
}

// start starts the server; again after a stop, on the same address and
// data folder, as an operator's restart does: sessions are gone.
func (s *realServer) start(t testing.TB) {
	t.Helper()
	srv, err := server.New(context.Background(), server.Options{Config: s.cfg, Executor: s.exec})
	if err != nil {
		t.Fatal(err)
	}
	ls, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	s.stop = stop
	tok, err := os.ReadFile(s.cfg.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	s.base, s.token = "http://"+ls[0].Addr().String(), strings.TrimSpace(string(tok))
	s.cfg.Listen = ls[0].Addr().String() // a restart takes the same address
}

// call is a REST call with the bearer token.
func (s *realServer) call(t testing.TB, method, path string, body any, out any) int {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(string(data)))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// browser starts a headless Debian chromium for the test.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium is not installed (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000), chromedp.Flag("headless", "new"))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("true")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// step runs actions with a timeout, failing the test with what it was doing.
func step(t testing.TB, ctx context.Context, what string, timeout time.Duration, acts ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(sctx, acts...); err != nil {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		body, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage text:\n%.3000s", what, err, body)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func login(t testing.TB, ctx context.Context, s *realServer) {
	t.Helper()
	step(t, ctx, "log in", 30*time.Second,
		chromedp.Navigate(s.base+"/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), s.token),
		chromedp.Submit(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-page="dashboard"]`)),
	)
}

// paste puts text into the create page's editor as a paste would (an
// input event).
func paste(sel, text string) chromedp.Action[chromedp.Void] {
	js, _ := json.Marshal(text)
	return evalStep(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %s; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, sel, js))
}

// evalStep is a step that runs JavaScript and drops its value.
func evalStep(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[any](expr)(ctx, t)
		return chromedp.Void{}, err
	}
}

// screenshot writes docs/screenshots/<name>.png when UPDATE_SCREENSHOTS=1
// (the tracked pictures change only when asked).
// viewportShots are taken of the window only: a side panel, a phone.
var viewportShots = map[string]bool{"console-top": true, "phone": true}

func screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	shot := chromedp.FullScreenshot(100)
	if viewportShots[name] {
		shot = chromedp.CaptureScreenshot()
	}
	png, err := chromedp.Run(sctx, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func suffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// twenty is a topology of 20 guests on 3 switches, one of them external,
// joined by a router.
func twenty() string {
	var b strings.Builder
	b.WriteString("machines:\n")
	for i := 0; i < 20; i++ {
		sw := i % 3
		role := []string{"web", "db", "client"}[sw]
		fmt.Fprintf(&b, "  - name: %s%d\n    network: [{switch: %s, ip: 10.%d.0.%d}]\n", role, i, []string{"front", "back", "lab"}[sw], 20+sw, 10+i)
	}
	b.WriteString(`network:
  switches:
    front: {subnet: 10.20.0.0/24}
    back: {subnet: 10.21.0.0/24}
    lab: {subnet: 10.22.0.0/24, external: true}
  routers:
    r1:
      ports:
        - {switch: front, gateway_ip: 10.20.0.1/24}
        - {switch: back, gateway_ip: 10.21.0.1/24}
        - {switch: lab, gateway_ip: 10.22.0.2/24}
      nat: [{nat_type: snat, logical_ip: 10.20.0.0/15, external_ip: 10.22.0.2}]
`)
	return b.String()
}

const small = `machines:
  - name: web
    network: [{switch: sw0, ip: 10.0.0.10}]
  - name: client
    network: [{switch: sw0, ip: 10.0.0.20}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// withSetup gives web a setup script, setup.sh.
func withSetup(yaml string) string {
	return strings.Replace(yaml, "    network: [{switch: sw0, ip: 10.0.0.10}]\n", "    network: [{switch: sw0, ip: 10.0.0.10}]\n    netns: {setup_script: setup.sh}\n", 1)
}

// badYAML has an address outside its switch's subnet on line 5.
const badYAML = `machines:
  - name: web
    network: [{switch: sw0, ip: 10.0.0.10}]
  - name: client
    network: [{switch: sw0, ip: 10.9.0.20}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestBrowser drives the GUI of a real server with the real engine in a
// real headless chromium: log in, a bad YAML shows its line and a missing
// setup script is reported, create by pasting, write a setup script and
// edit the YAML in the page, generate, up (log lines and the state arrive
// live, no reload), the topology and plots, the console as a terminal (vi,
// top), a link set down marked on the topology, plan and apply, down,
// cancel; 20 guests; axe-core on every page; the phone width; and a
// restarted server sending the page to the login form.
func TestBrowser(t *testing.T) {
	testenv.RequireRoot(t, "the GUI test brings a netns deployment up")
	ctx := browser(t)
	s := startReal(t, nil)
	login(t, ctx, s)

	// A bad YAML: its line is marked in the editor and listed.
	step(t, ctx, "bad YAML shows its line", 30*time.Second,
		chromedp.Navigate(s.base+"/deployments/new"),
		chromedp.WaitVisible(chromedp.ID("yaml")),
		chromedp.SendKeys(chromedp.ID("name"), "lab-bad"),
		paste("#yaml", badYAML),
		chromedp.WaitVisible(chromedp.CSS(`#problems li[data-line="5"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#gutter-line-5.bad`)),
	)
	problems := eval[string](t, ctx, `document.querySelector("#problems").innerText`)
	if !strings.Contains(problems, "line 5") || !strings.Contains(problems, "10.9.0.20") {
		t.Errorf("problems shown: %q", problems)
	}
	screenshot(t, ctx, "create-error")
	// A setup script that does not come with the YAML is a problem too.
	step(t, ctx, "a missing setup script is reported", 30*time.Second,
		paste("#yaml", withSetup(small)),
		chromedp.WaitVisible(chromedp.CSS(`#problems li[data-line="4"]`)),
	)
	if p := eval[string](t, ctx, `document.querySelector("#problems").innerText`); !strings.Contains(p, "setup.sh does not exist") {
		t.Errorf("problems shown for a missing script: %q", p)
	}

	// Create by pasting; the page of the new deployment opens.
	name := "gui" + suffix()
	t.Cleanup(func() { downAndForget(t, s, name) })
	step(t, ctx, "create by pasting", 30*time.Second,
		chromedp.Navigate(s.base+"/deployments/new"),
		chromedp.WaitVisible(chromedp.ID("yaml")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		paste("#yaml", small),
		chromedp.WaitVisible(chromedp.ID("valid")),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("deployment")),
		// A marker that a reload would lose.
		evalStep(`window.__noReload = true`),
	)
	editFiles(t, ctx)
	step(t, ctx, "generate draws the topology live", 60*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#btn-generate:enabled")), chromedp.Click(chromedp.ID("btn-generate")),
		chromedp.WaitVisible(chromedp.CSS("#log .line")),
		chromedp.WaitVisible(chromedp.CSS(`#topology svg #topo-guest-web`)),
		chromedp.WaitVisible(chromedp.CSS(`#topology svg #topo-switch-sw0`)),
		chromedp.WaitVisible(chromedp.CSS(`#history tr[data-uuid]`)),
	)
	step(t, ctx, "up: log lines and the state live", 120*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#btn-up:enabled")), chromedp.Click(chromedp.ID("btn-up")),
		// No wait for state-running: an up of two namespaces takes tens of
		// milliseconds, so the page may show running for less than a poll.
		chromedp.WaitVisible(chromedp.CSS("#log .line")),
		chromedp.WaitVisible(chromedp.CSS(`#state.state-up`)),
		chromedp.WaitVisible(chromedp.CSS("#log .end")),
	)
	lines := eval[int](t, ctx, `document.querySelectorAll("#log .line:not(.end)").length`)
	if lines < 3 {
		t.Errorf("only %d log lines of up shown", lines)
	}
	// The script written in the page ran; the log is in local time with
	// no raw ANSI escape, and named the stages.
	logText := eval[string](t, ctx, `document.querySelector("#log").innerText`)
	if !strings.Contains(logText, "gui-setup-ran") || strings.Contains(logText, "[32m") || strings.Contains(logText, "Z ") {
		t.Errorf("the log of up:\n%s", logText)
	}
	if stage := eval[string](t, ctx, `document.querySelector("#log-stage").textContent`); stage == "" {
		t.Error("no stage shown for up")
	}
	noReload := eval[bool](t, ctx, `window.__noReload === true`)
	if !noReload {
		t.Error("the page was reloaded")
	}
	guestsLive(t, ctx)
	consoleWorks(t, ctx)
	linkDown(t, ctx, "client", "eth0")
	planAndApply(t, ctx, s, name)
	step(t, ctx, "down asks first", 120*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#btn-down:enabled")), chromedp.Click(chromedp.ID("btn-down")),
		chromedp.WaitVisible(chromedp.ID("confirm-yes")),
		chromedp.Click(chromedp.ID("confirm-yes")),
		chromedp.WaitVisible(chromedp.CSS(`#state.state-down`)),
		chromedp.WaitVisible(chromedp.CSS(`#history tr[data-uuid] .outcome-success`)),
	)
	outcome := eval[string](t, ctx, `document.querySelector("#history tbody tr").innerText`)
	if !strings.Contains(outcome, "down") || !strings.Contains(outcome, "success") {
		t.Errorf("last action row: %q", outcome)
	}
	if on := eval[bool](t, ctx, `!document.querySelector("#btn-down").disabled || !document.querySelector("#btn-cancel").disabled`); on {
		t.Error("Down or Cancel is enabled on a deployment that is down")
	}
	if why := eval[string](t, ctx, `document.querySelector("#btn-cancel").title`); !strings.Contains(why, "nothing is running") {
		t.Errorf("Cancel on a deployment that is down says %q", why)
	}
	cancelWorks(t, ctx, s, name)

	// 20 guests on 3 switches, one link down: the picture for the README.
	big := "lab" + suffix()
	t.Cleanup(func() { downAndForget(t, s, big) })
	step(t, ctx, "20 guests", 90*time.Second,
		chromedp.Navigate(s.base+"/deployments/new"),
		chromedp.WaitVisible(chromedp.ID("yaml")),
		chromedp.SendKeys(chromedp.ID("name"), big),
		paste("#yaml", twenty()),
		chromedp.WaitVisible(chromedp.ID("valid")),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS("#btn-generate:enabled")), chromedp.Click(chromedp.ID("btn-generate")),
		chromedp.WaitVisible(chromedp.CSS(`#topology svg #topo-guest-client20, #topology svg #topo-guest-client2`)),
		chromedp.WaitVisible(chromedp.CSS(`#topology svg #topo-router-r1`)),
		chromedp.WaitVisible(chromedp.CSS(`#topology svg #topo-external-lab`)),
		chromedp.WaitVisible(chromedp.CSS(`#log .end`)),
	)
	drawn := eval[int](t, ctx, `document.querySelectorAll("#topology svg .guest").length`)
	if drawn != 20 {
		t.Errorf("%d guests drawn, want 20", drawn)
	}
	step(t, ctx, "up of 20 guests", 120*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#btn-up:enabled")), chromedp.Click(chromedp.ID("btn-up")),
		chromedp.WaitVisible(chromedp.CSS(`#state.state-up`)),
		chromedp.WaitVisible(chromedp.CSS(`#history tr[data-uuid] + tr`)),
	)
	if code := s.call(t, "PUT", "/api/deployments/"+big+"/guests/db1/interfaces/eth0", map[string]any{"up": false}, nil); code != 200 {
		t.Fatalf("link down through the API: %d", code)
	}
	step(t, ctx, "the link down is marked", 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`#topo-link-db1-eth0.down`)))
	// A guest gone behind the daemon's back is marked stopped.
	if out, err := exec.Command("ip", "netns", "delete", topology.NamespaceName(big, "db4")).CombinedOutput(); err != nil {
		t.Fatalf("removing db4's namespace: %v: %s", err, out)
	}
	step(t, ctx, "a stopped guest is marked", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#topo-guest-db4.stopped`)),
		chromedp.WaitVisible(chromedp.CSS(`#guests-table tr[data-guest="db4"] .status.st-stopped`)),
	)
	// Many guests: no plots in the table (the page stays short); a guest's
	// panel has its plot.
	if off := eval[bool](t, ctx, `document.querySelector("#guests-table").classList.contains("no-plots") && !document.querySelector("#show-plots").checked`); !off {
		t.Error("20 guests: plots in the table")
	}
	if h := eval[int](t, ctx, `document.documentElement.scrollHeight`); h > 4000 {
		t.Errorf("the page of 20 guests is %d px tall", h)
	}
	screenshot(t, ctx, "deployment-20-guests")
	step(t, ctx, "a guest's panel has its plot", 20*time.Second,
		chromedp.Click(chromedp.CSS(`button.inspect-open[data-guest="web0"]`)),
		chromedp.WaitVisible(chromedp.ID("inspect-plot")),
	)
	waitTrue(t, ctx, `(() => { const img = document.querySelector("#inspect-plot"); return img.src.includes("/guests/web0?") && img.complete && img.naturalWidth > 0 })()`)
	// Opened again, the page shows the last action's log (the up), not an
	// empty card.
	step(t, ctx, "the page opens on the last action's log", 60*time.Second,
		chromedp.Navigate(s.base+"/deployments/"+big),
		chromedp.WaitVisible(chromedp.CSS("#log .line")),
		chromedp.WaitVisible(chromedp.CSS("#log .end")),
	)
	if title := eval[string](t, ctx, `document.querySelector("#log-title").textContent`); !strings.HasPrefix(title, "up ") {
		t.Errorf("log title %q, want the up's", title)
	}
	// Power from a guest's panel: stop web0, see it stopped, start it again.
	step(t, ctx, "stop a guest from its panel", 20*time.Second,
		chromedp.Click(chromedp.CSS(`button.inspect-open[data-guest="web0"]`)),
		chromedp.WaitEnabled(chromedp.CSS(`#inspect .power-btn[data-power="stopped"]`)),
		chromedp.Click(chromedp.CSS(`#inspect .power-btn[data-power="stopped"]`)),
	)
	waitTrue(t, ctx, `document.querySelector("#inspect-status").textContent === "stopped"`)
	step(t, ctx, "start it again", 20*time.Second,
		chromedp.WaitEnabled(chromedp.CSS(`#inspect .power-btn[data-power="running"]`)),
		chromedp.Click(chromedp.CSS(`#inspect .power-btn[data-power="running"]`)),
	)
	waitTrue(t, ctx, `document.querySelector("#inspect-status").textContent === "running"`)
	step(t, ctx, "dashboard", 30*time.Second,
		chromedp.Navigate(s.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#deployments-table a[href="/deployments/`+big+`"]`)),
	)
	waitTrue(t, ctx, `(() => { const img = document.querySelector("#host-plot img.plot"); return img.complete && img.naturalWidth > 0 })()`)
	screenshot(t, ctx, "dashboard")
	step(t, ctx, "configuration page", 30*time.Second, chromedp.Navigate(s.base+"/config"), chromedp.WaitVisible(chromedp.ID("status")))
	waitTrue(t, ctx, `document.querySelector("#status").textContent.includes('"mode": "main"') && document.querySelector("#host-config").value.includes('"name"')`)

	pages := []string{"/", "/deployments", "/deployments/new", "/deployments/" + big, "/cluster", "/config"}
	accessible(t, ctx, s, pages)
	phoneWidth(t, ctx, s, pages, big)

	// A restarted server: the open page asks for a login again.
	step(t, ctx, "the deployment page open", 30*time.Second,
		chromedp.Navigate(s.base+"/deployments/"+big),
		chromedp.WaitVisible(chromedp.ID("deployment")),
	)
	// While the server is away the page says it is not live.
	stop := s.stop
	s.stop = nil
	if err := stop(); err != nil {
		t.Fatalf("server stop: %v", err)
	}
	step(t, ctx, "the page says it is not live", 30*time.Second, chromedp.WaitVisible(chromedp.ID("not-live")))
	s.start(t)
	step(t, ctx, "a restarted server sends the page to the login", 60*time.Second,
		chromedp.WaitVisible(chromedp.ID("token")),
	)
	if u := eval[string](t, ctx, `location.pathname + location.search`); !strings.HasPrefix(u, "/login?next=%2Fdeployments%2F"+big) {
		t.Errorf("after the restart the page is at %s", u)
	}
	login(t, ctx, s)
	step(t, ctx, "log out", 30*time.Second,
		chromedp.Click(chromedp.CSS(`form.logout button`)),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.Navigate(s.base+"/deployments"),
		chromedp.WaitVisible(chromedp.ID("token")),
	)
}

// waitTrue waits until the JavaScript expression is true in the page.
func waitTrue(t testing.TB, ctx context.Context, expr string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if eval[bool](t, ctx, expr) {
			return
		}
	}
	t.Fatalf("never true: %s", expr)
}

// downAndForget brings a deployment down (when it is not) and deletes its
// record, so a failed test leaves no namespace behind.
func downAndForget(t testing.TB, s *realServer, name string) {
	var dep api.Deployment
	if s.call(t, "GET", "/api/deployments/"+name, nil, &dep) != 200 {
		return
	}
	if !dep.State.Is(api.StateDown) {
		var acc api.ActionAccepted
		if s.call(t, "POST", "/api/deployments/"+name+"/action", map[string]any{"command": "down"}, &acc) == 202 {
			for i := 0; i < 120; i++ {
				s.call(t, "GET", "/api/deployments/"+name, nil, &dep)
				if !dep.State.Is(api.StateRunning) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
	s.call(t, "DELETE", "/api/deployments/"+name+"?force=true", nil, nil)
}
