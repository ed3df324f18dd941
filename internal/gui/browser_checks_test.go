package gui_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/testbedos/testbedos/internal/testenv"
)

// editFiles writes a setup script and edits kvm-compose.yaml to run it, in
// the page's project files editor: no shell.
func editFiles(t *testing.T, ctx context.Context) {
	t.Helper()
	step(t, ctx, "a new setup script", 20*time.Second,
		chromedp.WaitReady(chromedp.CSS(`#file-pick option[value="kvm-compose.yaml"]`)),
		chromedp.SendKeys(chromedp.ID("file-new"), "setup.sh"),
		chromedp.Click(chromedp.ID("file-new-btn")),
		chromedp.WaitReady(chromedp.CSS(`#file-pick option[value="setup.sh"]`)),
	)
	waitTrue(t, ctx, `document.querySelector("#file-pick").value === "setup.sh" && document.querySelector("#file-text").value.startsWith("#!/bin/sh") && !document.querySelector("#file-text").disabled`)
	step(t, ctx, "write the script", 20*time.Second,
		paste("#file-text", "#!/bin/sh\r\necho gui-setup-ran\r\n"),
		chromedp.Click(chromedp.ID("file-save")),
	)
	waitTrue(t, ctx, `document.querySelector("#file-msg").textContent === "saved"`)
	step(t, ctx, "open the YAML", 20*time.Second,
		evalStep(`(() => { const p = document.querySelector("#file-pick"); p.value = "kvm-compose.yaml"; p.dispatchEvent(new Event("change")); })()`),
	)
	waitTrue(t, ctx, `document.querySelector("#file-text").value.startsWith("machines:")`)
	step(t, ctx, "edit the YAML", 20*time.Second,
		paste("#file-text", strings.ReplaceAll(withSetup(small), "\n", "\r\n")),
		chromedp.Click(chromedp.ID("file-save")),
	)
	waitTrue(t, ctx, `document.querySelector("#file-msg").textContent === "saved" && document.querySelector("#file-problems").children.length === 0`)
	// What the page saved has LF line endings.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	text, err := chromedp.Run(sctx, chromedp.Evaluate[string](`fetch(location.pathname.replace("/deployments/", "/api/deployments/") + "/files/setup.sh").then((r) => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if text != "#!/bin/sh\necho gui-setup-ran\n" {
		t.Errorf("setup.sh as saved: %q", text)
	}
}

// linkDown opens a guest from the topology, runs a command in it, sets one
// of its links down and finds the link marked on the topology and in the
// guests table.
func linkDown(t *testing.T, ctx context.Context, guest, iface string) {
	t.Helper()
	form := `#inspect .iface[data-iface="` + iface + `"]`
	step(t, ctx, "the topology opens a guest", 20*time.Second,
		evalStep(`document.querySelector("#topo-guest-`+guest+`").dispatchEvent(new MouseEvent("click", {bubbles: true}))`),
		chromedp.WaitVisible(chromedp.CSS(form)),
		chromedp.SendKeys(chromedp.ID("exec-cmd"), "echo exec-$((2+3))"),
		chromedp.Click(chromedp.ID("exec-run")),
	)
	waitTrue(t, ctx, `document.querySelector("#exec-out").textContent.includes("exec-5")`)
	step(t, ctx, "set the link down", 20*time.Second,
		chromedp.Click(chromedp.CSS(form+` input[name="up"]`)),
		chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#topo-link-`+guest+`-`+iface+`.down`)),
		chromedp.WaitVisible(chromedp.CSS(`#guests-table tr[data-guest="`+guest+`"] .link-down`)),
		chromedp.Click(chromedp.ID("inspect-close")),
		// The link itself opens the panel at its impairments.
		evalStep(`document.querySelector("#topo-link-`+guest+`-`+iface+`").dispatchEvent(new MouseEvent("click", {bubbles: true}))`),
		chromedp.WaitVisible(chromedp.CSS(form+`.focus`)),
		chromedp.Click(chromedp.ID("inspect-close")),
	)
	if up := eval[bool](t, ctx, `document.querySelector('`+form+` input[name="up"]').checked`); up {
		t.Error("the panel shows the link up")
	}
}

// accessible runs axe-core on each page and fails on a serious or
// critical violation.
func accessible(t *testing.T, ctx context.Context, s *realServer, pages []string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("js", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		testenv.Missing(t, "axe-core is not installed: make gui-assets installs it ("+err.Error()+")")
	}
	for _, p := range append(pages, "/login") {
		step(t, ctx, "axe on "+p, 30*time.Second,
			chromedp.Navigate(s.base+p),
			chromedp.WaitReady(chromedp.CSS("main")),
			chromedp.Sleep(700*time.Millisecond), // the page's own requests
			evalStep(string(src)),
		)
		if strings.HasPrefix(p, "/deployments/") && p != "/deployments/new" {
			// With the guest panel open: its forms count too.
			step(t, ctx, "open a guest's panel", 20*time.Second,
				evalStep(`document.querySelector("#topology .guest").dispatchEvent(new MouseEvent("click", {bubbles: true}))`),
				chromedp.WaitVisible(chromedp.CSS("#inspect .iface")),
			)
		}
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		out, err := chromedp.Run(sctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then((r) => JSON.stringify(
			r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => ({id: v.id, impact: v.impact,
				nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ") + ": " + n.failureSummary)}))))`, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			t.Fatalf("axe on %s: %v", p, err)
		}
		var vs []any
		json.Unmarshal([]byte(out), &vs)
		if len(vs) > 0 {
			pretty, _ := json.MarshalIndent(vs, "", "  ")
			t.Errorf("axe on %s: %d serious or critical violation(s):\n%s", p, len(vs), pretty)
		}
	}
}

// phoneWidth loads each page 390 px wide: none scrolls sideways.
func phoneWidth(t *testing.T, ctx context.Context, s *realServer, pages []string, shot string) {
	t.Helper()
	step(t, ctx, "a phone's width", 10*time.Second, chromedp.EmulateViewport(390, 844))
	defer step(t, ctx, "back to a desktop", 10*time.Second, chromedp.EmulateViewport(1400, 1000))
	for _, p := range pages {
		step(t, ctx, "390 px: "+p, 30*time.Second,
			chromedp.Navigate(s.base+p),
			chromedp.WaitReady(chromedp.CSS("main")),
			chromedp.Sleep(500*time.Millisecond),
		)
		w := eval[int](t, ctx, `Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)`)
		if w > 390 {
			wide := eval[string](t, ctx, `[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > 392 && !e.parentElement.closest(".scroll, .table-wrap, pre")).slice(0, 8).map((e) => e.tagName + "#" + e.id + "." + e.getAttribute("class")).join(", ")`)
			t.Errorf("%s at 390 px is %d px wide: %s", p, w, wide)
		}
		if strings.HasSuffix(p, "/"+shot) {
			screenshot(t, ctx, "phone")
		}
	}
}
