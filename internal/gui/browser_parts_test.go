package gui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/testbedos/testbedos/internal/api"
)

// guestsLive: the guests table shows status and resource use from the
// guests route, and every guest's plot is drawn again once the monitor
// has sampled it — a real SVG the browser decoded (naturalWidth > 0) that
// holds samples. Snapshot buttons are off, with a reason, for netns guests.
func guestsLive(t *testing.T, ctx context.Context) {
	t.Helper()
	step(t, ctx, "guests table: status and resources live", 30*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#guests-table tr[data-guest="web"] .status.st-running`)),
		chromedp.WaitVisible(chromedp.CSS(`#guests-table tr[data-guest="client"] .status.st-running`)),
	)
	waitTrue(t, ctx, `[...document.querySelectorAll("#guests-table tr[data-guest]")].every((tr) =>
		tr.querySelector(".mem").textContent.includes("B") && tr.querySelector(".ips").textContent.includes("10.0.0."))`)
	waitTrue(t, ctx, `[...document.querySelectorAll("#guests-table img.plot")].every((img) =>
		img.dataset.sampled && img.complete && img.naturalWidth > 0 && img.src.includes("&t="))`)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	svg, err := chromedp.Run(sctx, chromedp.Evaluate[string](`fetch(document.querySelector('#guests-table tr[data-guest="web"] img.plot').src).then((r) => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetching the plot: %v", err)
	}
	if !strings.Contains(svg, "<svg") || strings.Contains(svg, "no samples") {
		t.Errorf("the web guest's plot: %.300s", svg)
	}
	// A shorter time range draws the plots again over it.
	step(t, ctx, "plots over 5 minutes", 10*time.Second,
		evalStep(`(() => { const s = document.querySelector("#plot-range"); s.value = "5m"; s.dispatchEvent(new Event("change")); })()`))
	waitTrue(t, ctx, `[...document.querySelectorAll("#guests-table img.plot")].every((img) => img.src.includes("range=5m") && img.complete && img.naturalWidth > 0)`)
	disabled := eval[bool](t, ctx, `document.querySelector("#btn-snap-create").disabled && document.querySelector("#btn-snap-restore").disabled`)
	tip := eval[string](t, ctx, `document.querySelector("#btn-snap-create").title`)
	if !disabled || !strings.Contains(tip, "no snapshots") {
		t.Errorf("snapshot buttons for netns guests: disabled %v, tooltip %q", disabled, tip)
	}
}

// consoleWorks opens the web guest's console in its side panel and uses
// it as a terminal: a command and its output, Ctrl-C interrupting a sleep,
// vi and top on the alternate screen with no raw escape sequence shown,
// the alternate screen left when they end, and Escape then Tab leaving
// the terminal.
func consoleWorks(t *testing.T, ctx context.Context) {
	t.Helper()
	step(t, ctx, "open the console", 30*time.Second,
		chromedp.Click(chromedp.CSS(`button.console-open[data-guest="web"]`)),
		chromedp.WaitVisible(chromedp.CSS("#console-term .xterm")),
	)
	waitTrue(t, ctx, `document.querySelector("#console-msg").textContent.startsWith("connected")`)
	// The panel is beside the page, not below the guests table.
	if top := eval[float64](t, ctx, `document.querySelector("#console").getBoundingClientRect().top`); top > 10 {
		t.Errorf("the console opens %v px down the window", top)
	}
	typeKeys := func(what, keys string) {
		t.Helper()
		step(t, ctx, what, 20*time.Second, termKeys(keys))
	}
	screenHas := func(s string) string {
		js, _ := json.Marshal(s)
		return `window.__consoleText().includes(` + string(js) + `)`
	}
	typeKeys("type a command", "echo hi-$((6*7))\r")
	waitScreen(t, ctx, `window.__consoleText().split("\n").some((l) => l.trim() === "hi-42")`)
	// The guest's terminal has the panel's size, and follows it.
	sizeSeen := func() {
		t.Helper()
		typeKeys("stty size", "clear; stty size\r")
		waitScreen(t, ctx, `window.__consoleText().split("\n").some((l) => l.trim() === window.__term.rows + " " + window.__term.cols)`)
	}
	sizeSeen()
	cols := eval[int](t, ctx, `window.__term.cols`)
	step(t, ctx, "a narrower window", 10*time.Second, chromedp.EmulateViewport(600, 900))
	waitTrue(t, ctx, fmt.Sprintf(`window.__term.cols < %d`, cols))
	sizeSeen()
	step(t, ctx, "the window back", 10*time.Second, chromedp.EmulateViewport(1400, 1000))
	typeKeys("a long sleep", "sleep 30\r")
	step(t, ctx, "Ctrl-C interrupts", 20*time.Second,
		chromedp.Sleep(300*time.Millisecond),
		chromedp.KeyEvent("c", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	typeKeys("after Ctrl-C", "echo after-$((1+1))\r")
	waitScreen(t, ctx, `window.__consoleText().split("\n").some((l) => l.trim() === "after-2")`)

	// vi: its screen on the alternate buffer, its status line intact.
	typeKeys("vi", "vi /tmp/gui-vi-test.txt\r")
	waitScreen(t, ctx, `window.__term.buffer.active.type === "alternate" && `+screenHas("~"))
	typeKeys("vi: insert", "ihello from vi\x1b")
	waitScreen(t, ctx, screenHas("hello from vi"))
	noRawEscapes(t, ctx, "vi")
	typeKeys("vi: quit", ":q!\r")
	waitScreen(t, ctx, `window.__term.buffer.active.type === "normal"`)

	// top: its header, then q leaves it.
	typeKeys("top", "top -d 1\r")
	// Its header at the top of the screen, where cursor addressing puts it.
	waitScreen(t, ctx, `(() => { const b = window.__term.buffer.active; return b.getLine(b.viewportY).translateToString().startsWith("top - ") })()`)
	step(t, ctx, "top refreshes", 10*time.Second, chromedp.Sleep(1500*time.Millisecond))
	noRawEscapes(t, ctx, "top")
	screenshot(t, ctx, "console-top")
	// q as a key press (a stray second q is wiped by Ctrl-U).
	step(t, ctx, "top: quit", 20*time.Second,
		chromedp.KeyEvent("q"),
		chromedp.Sleep(time.Second),
		chromedp.KeyEvent("u", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
	)
	typeKeys("the shell is back", "echo back-$((3+4))\r")
	waitScreen(t, ctx, `window.__consoleText().split("\n").some((l) => l.trim() === "back-7")`)
	noRawEscapes(t, ctx, "the shell after top")

	// Escape then Tab moves the focus out of the terminal.
	step(t, ctx, "leave the terminal", 10*time.Second,
		chromedp.KeyEvent("\x1b"),
		chromedp.KeyEvent("\t"),
	)
	if in := eval[bool](t, ctx, `document.querySelector("#console-term").contains(document.activeElement)`); in {
		t.Error("Escape then Tab left the focus in the terminal")
	}
	step(t, ctx, "close the console", 10*time.Second, chromedp.Click(chromedp.ID("console-close")))
}

// waitScreen is waitTrue that shows the terminal's screen when it fails.
func waitScreen(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if eval[bool](t, ctx, expr) {
			return
		}
	}
	t.Fatalf("never true: %s\nthe screen:\n%s", expr, eval[string](t, ctx, `window.__consoleText()`))
}

// noRawEscapes fails when the terminal shows an escape sequence as text.
func noRawEscapes(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	text := eval[string](t, ctx, `window.__consoleText()`)
	if i := rawEscape.FindStringIndex(text); i != nil || strings.ContainsRune(text, 0x1b) {
		t.Errorf("%s: the terminal shows a raw escape sequence: %q", what, text)
	}
}

// rawEscape is what a CSI sequence looks like once its ESC is lost.
// (Kernel threads in top, "[kworker/0:1]", are not.)
var rawEscape = regexp.MustCompile(`\[\?[0-9;]+[hl]|\[[0-9]+(;[0-9]+)*[HJKmrf]|\[[HJK]([^a-z]|$)`)

// planAndApply adds a guest to kvm-compose.yaml: Apply… shows it as a
// diff, and applying it brings it into the guests table without a reload.
func planAndApply(t *testing.T, ctx context.Context, s *realServer, name string) {
	t.Helper()
	var dep api.Deployment
	if s.call(t, "GET", "/api/deployments/"+name, nil, &dep) != 200 {
		t.Fatal("no deployment")
	}
	at := strings.Index(small, "\nnetwork:") + 1
	more := small[:at] + "  - name: extra\n    network: [{switch: sw0, ip: 10.0.0.30}]\n" + small[at:]
	if err := os.WriteFile(filepath.Join(dep.ProjectLocation, "kvm-compose.yaml"), []byte(more), 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "the plan as a diff", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#btn-plan:enabled")), chromedp.Click(chromedp.ID("btn-plan")),
		chromedp.WaitVisible(chromedp.CSS(`#plan .diff.op-add`)),
	)
	plan := eval[string](t, ctx, `document.querySelector("#plan").innerText`)
	if !strings.Contains(plan, "+ guest extra") || !strings.Contains(plan, "guest web") {
		t.Errorf("plan shown: %q", plan)
	}
	step(t, ctx, "apply", 60*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#btn-apply:enabled")), chromedp.Click(chromedp.ID("btn-apply")),
		chromedp.WaitVisible(chromedp.CSS(`#history tr[data-uuid] + tr + tr`)),
		chromedp.WaitVisible(chromedp.CSS(`#guests-table tr[data-guest="extra"] .status.st-running`)),
		chromedp.WaitVisible(chromedp.CSS(`#topology svg #topo-guest-extra`)),
	)
	first := eval[string](t, ctx, `document.querySelector("#history tbody tr").innerText`)
	if !strings.Contains(first, "apply") || !strings.Contains(first, "success") {
		t.Errorf("last action row after apply: %q", first)
	}
	// A past action opens its log.
	step(t, ctx, "a past action's log", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#history tbody tr:last-child a[data-log]`)),
		chromedp.WaitVisible(chromedp.CSS(`#log .end`)),
	)
	if title := eval[string](t, ctx, `document.querySelector("#log-title").textContent`); !strings.Contains(title, "log") {
		t.Errorf("log title %q", title)
	}
}

// cancelWorks gives web a setup script that sleeps, presses Up and then
// Cancel while the script runs: the action ends cancelled, seen live.
func cancelWorks(t *testing.T, ctx context.Context, s *realServer, name string) {
	t.Helper()
	var dep api.Deployment
	if s.call(t, "GET", "/api/deployments/"+name, nil, &dep) != 200 {
		t.Fatal("no deployment")
	}
	slow := strings.Replace(small, "    network: [{switch: sw0, ip: 10.0.0.10}]\n", "    network: [{switch: sw0, ip: 10.0.0.10}]\n    netns: {setup_script: slow.sh}\n", 1)
	for file, text := range map[string]string{"kvm-compose.yaml": slow, "slow.sh": "#!/bin/sh\nsleep 60\n"} {
		if err := os.WriteFile(filepath.Join(dep.ProjectLocation, file), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	step(t, ctx, "generate with the slow script", 30*time.Second, chromedp.WaitVisible(chromedp.CSS("#btn-generate:enabled")), chromedp.Click(chromedp.ID("btn-generate")))
	waitTrue(t, ctx, `(document.querySelector("#history tbody tr") || {}).innerText.includes("generate-artefacts")`)
	step(t, ctx, "up, then cancel during setup", 30*time.Second, chromedp.WaitVisible(chromedp.CSS("#btn-up:enabled")), chromedp.Click(chromedp.ID("btn-up")))
	waitTrue(t, ctx, `document.querySelector("#log").textContent.includes("setup: 1 setup script")`)
	step(t, ctx, "cancel", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#btn-cancel:enabled")), chromedp.Click(chromedp.ID("btn-cancel")))
	waitTrue(t, ctx, `(() => { const r = document.querySelector("#history tbody tr").innerText; return r.includes("up") && r.includes("cancelled") })()`)
	// A cancelled up leaves the deployment failed(up), for down to clean;
	// it reads cancelled(up), as the CLI shows it: live, in the log's last
	// line and once the page is loaded again.
	waitTrue(t, ctx, `document.querySelector("#state").textContent !== "running"`)
	if st := eval[string](t, ctx, `document.querySelector("#state").textContent`); st != "cancelled(up)" {
		t.Errorf("state after cancel: %q", st)
	}
	waitTrue(t, ctx, `document.querySelector("#log").textContent.includes("state cancelled(up)")`)
	step(t, ctx, "reload", 30*time.Second, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("state")))
	if st := eval[string](t, ctx, `document.querySelector("#state").textContent`); st != "cancelled(up)" {
		t.Errorf("state after cancel, the page loaded again: %q", st)
	}
}

// termKeys types into the focused terminal: printable runs as text input
// (as a phone's keyboard or an input method sends them), Enter, Escape and
// the other control keys as key presses.
func termKeys(keys string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		run := []rune{}
		flush := func() error {
			if len(run) == 0 {
				return nil
			}
			_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: string(run)})
			run = run[:0]
			return err
		}
		for _, r := range keys {
			if r >= ' ' && r != 0x7f {
				run = append(run, r)
				continue
			}
			if err := flush(); err != nil {
				return err
			}
			if _, err := chromedp.KeyEvent(string(r))(ctx, t); err != nil {
				return err
			}
		}
		return flush()
	})
}
