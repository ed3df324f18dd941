// TestbedOS GUI, the deployment page: action buttons that follow the
// state, the live log (ANSI colours, local time, the stage in progress),
// the guests table (paged, filtered, polled for status and resources) and
// the live state on the topology. inspect.js adds the guest panel and the
// project files editor.
"use strict";

const ansiRE = /\x1b\[([0-9;]*)m/g;

// ansiSpans appends text to el with its SGR colours as classes; other
// escape sequences are dropped.
function ansiSpans(el, text) {
  let cls = [], last = 0, m;
  const add = (s) => {
    if (!s) return;
    s = s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b./g, "");
    if (!cls.length) { el.append(s); return; }
    const span = document.createElement("span");
    span.className = cls.join(" ");
    span.textContent = s;
    el.appendChild(span);
  };
  ansiRE.lastIndex = 0;
  while ((m = ansiRE.exec(text))) {
    add(text.slice(last, m.index));
    last = ansiRE.lastIndex;
    (m[1] || "0").split(";").forEach((c) => {
      const n = +c;
      if (n === 0) cls = [];
      else if (n === 1) cls.push("a-b");
      else if (n >= 30 && n <= 37) cls = cls.filter((x) => x === "a-b").concat("a-" + n);
      else if (n >= 90 && n <= 97) cls = cls.filter((x) => x === "a-b").concat("a-" + (n - 60), "a-b");
      else if (n === 39) cls = cls.filter((x) => x === "a-b");
    });
  }
  add(text.slice(last));
}

const tsRE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))\s?/;
const stageRE = /==> (\S+) \[(\d+)\/(\d+)\] ([^:]+)/;

function deploymentPage() {
  const root = $("#deployment");
  if (!root) return;
  const name = root.dataset.name;
  const logEl = $("#log"), title = $("#log-title"), stageEl = $("#log-stage");
  let stream = null, following = "", busy = false;

  // --- buttons follow the state: nothing starts while an action runs (or
  // while a request is on its way), down only when something is up,
  // deleting only when down.
  const state = () => root.dataset.state;
  const buttons = () => {
    const s = state(), run = s === "running" || busy;
    const set = (sel, on, why) => $$(sel).forEach((b) => { b.disabled = !on; b.title = on ? (b.dataset.tip || "") : why; });
    set("#btn-generate, #btn-up, #btn-plan, #btn-apply", !run, "an action is running: wait for it or cancel it");
    set("#btn-down", !run && s !== "down", s === "down" ? "the deployment is down already" : "an action is running: wait for it or cancel it");
    set("#btn-destroy", !run && s === "down", run ? "an action is running" : "bring the deployment down first");
    set("#btn-cancel", s === "running", "nothing is running: there is nothing to cancel");
    $$("#snapshots button[data-snapshot]").forEach((b) => { if (run) b.disabled = true; });
    if (!run) snapState();
  };
  $$("#btn-plan").forEach((b) => { b.dataset.tip = b.title; });
  eventHandlers.push((ev) => {
    if (ev.deployment === name && ev.type === "deployment-state") { root.dataset.state = stateKind(ev.state); buttons(); }
  });

  const showStage = (line) => {
    const m = stageRE.exec(line);
    if (!m) return false;
    stageEl.hidden = false;
    stageEl.textContent = m[1] + " " + m[2] + "/" + m[3] + ": " + m[4].trim();
    return true;
  };
  const logLine = (text) => {
    const line = document.createElement("div");
    line.className = "line";
    const m = tsRE.exec(text);
    if (m) {
      const t = document.createElement("time");
      t.className = "ts";
      t.dateTime = m[1];
      t.textContent = new Date(m[1]).toLocaleTimeString() + " ";
      line.appendChild(t);
      text = text.slice(m[0].length);
    }
    if (showStage(text)) line.classList.add("stage-line");
    ansiSpans(line, text);
    return line;
  };
  const follow = (uuid, label) => {
    if (following === uuid) return;
    if (stream) { stream.onclose = null; stream.close(); }
    following = uuid;
    logEl.textContent = "";
    stageEl.hidden = true;
    title.textContent = (label || "") + " " + uuid;
    const ws = new WebSocket(wsURL("/api/logs/" + encodeURIComponent(uuid) + "/stream"));
    stream = ws;
    ws.onmessage = (m) => {
      const atEnd = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
      logEl.appendChild(logLine(m.data));
      // Keep the page light on long logs: the whole log is at /api/logs/{uuid}/text.
      while (logEl.childElementCount > 5000) logEl.firstElementChild.remove();
      if (atEnd) logEl.scrollTop = logEl.scrollHeight;
    };
    ws.onclose = (e) => {
      const end = document.createElement("div");
      end.className = "line end";
      let text = "stream closed (" + e.code + ")";
      try {
        const o = JSON.parse(e.reason);
        text = "— ended: " + ["success", "failed", "cancelled", "interrupted"][o.error_code] + ", state " + stateText(o.end_state, o.error_code);
        stageEl.textContent = "ended: " + ["success", "failed", "cancelled", "interrupted"][o.error_code];
      } catch (err) { /* no outcome */ }
      end.textContent = text;
      logEl.appendChild(end);
      logEl.scrollTop = logEl.scrollHeight;
      if (stream === ws) { stream = null; following = ""; }
    };
  };

  const act = async (action, extra) => {
    let r;
    busy = true;
    buttons();
    try {
      if (action === "cancel") {
        if (state() !== "running") { notice("Nothing is running, so there is nothing to cancel."); return { status: 0 }; }
        r = await api("POST", "/api/deployments/" + name + "/cancel", following ? { uuid: following } : {});
      } else {
        const body = Object.assign({ command: action }, extra || {});
        if (action === "up") {
          body.provision = $("#opt-provision").checked;
          body.rerun_scripts = $("#opt-rerun").checked;
        }
        r = await api("POST", "/api/deployments/" + name + "/action", body);
      }
    } finally {
      busy = false;
      buttons();
    }
    if (r.status === 202) {
      notice(action === "cancel" ? "cancelling…" : action + " started");
      if (action !== "cancel") { root.dataset.state = "running"; follow(r.data.uuid, action); }
    } else if (action === "cancel" && r.status === 409) {
      notice("Nothing is running, so there is nothing to cancel.");
    } else if (r.status !== 401) {
      notice(errorText(r), true);
    }
    buttons();
    return r;
  };
  $$("#actions button[data-action]").forEach((b) => b.addEventListener("click", async () => {
    if (b.dataset.confirm && !(await ask(b.dataset.confirm, b.textContent))) return;
    act(b.dataset.action);
  }));
  $("#btn-destroy").addEventListener("click", async (e) => {
    if (!(await ask(e.target.dataset.confirm, "Delete"))) return;
    const r = await api("DELETE", "/api/deployments/" + encodeURIComponent(name));
    if (r.status === 204) location.assign("/deployments");
    else notice(errorText(r), true);
  });

  // Snapshots: for guests whose kind has them (libvirt); the buttons say
  // why they are off for the others.
  const snapState = async () => {
    const sel = $("#snap-guest");
    const opt = sel && sel.selectedOptions[0];
    const can = !!(opt && opt.dataset.snapshots) && state() !== "running";
    $$("#snapshots button[data-snapshot]").forEach((b) => {
      b.disabled = !can;
      b.title = can ? b.dataset.snapshot + " a snapshot of " + opt.value
        : opt ? "guests of this kind have no snapshots (libvirt guests do)" : "no guests yet: press Generate";
    });
    const list = $("#snap-list");
    list.textContent = "";
    if (!can) return;
    const r = await api("GET", "/api/deployments/" + name + "/guests/" + encodeURIComponent(opt.value) + "/snapshots");
    const items = r.ok ? (Array.isArray(r.data) ? r.data : (r.data && r.data.snapshots) || []) : [];
    items.forEach((x) => {
      const o = document.createElement("option");
      o.value = typeof x === "string" ? x : x.name;
      list.appendChild(o);
    });
  };
  document.addEventListener("change", (e) => { if (e.target.id === "snap-guest") snapState(); });
  document.addEventListener("click", (e) => {
    const b = e.target.closest("#snapshots button[data-snapshot]");
    if (!b || b.disabled) return;
    act("snapshot", { snapshot: { sub_command: b.dataset.snapshot, guest: $("#snap-guest").value, name: $("#snap-name").value || undefined } });
  });

  // Apply: first the plan, as a diff; then apply it.
  const planCard = $("#plan-card"), planEl = $("#plan");
  const showPlan = async () => {
    planCard.hidden = false;
    planEl.textContent = "loading…";
    const r = await api("GET", "/api/deployments/" + name + "/plan");
    planEl.textContent = "";
    if (!r.ok) { planEl.textContent = errorText(r); $("#btn-apply").disabled = true; return; }
    const add = (cls, text) => {
      const d = document.createElement("div");
      d.className = "diff " + cls;
      d.textContent = text;
      planEl.appendChild(d);
    };
    const sign = { add: "+", remove: "-", remake: "~", impair: "~" };
    const changes = r.data.changes || [], same = r.data.unchanged || [];
    changes.forEach((c) => add("op-" + c.op, (sign[c.op] || "~") + " " + c.kind + " " + c.name + (c.host ? " (" + c.host + ")" : "") + "  " + c.op + (c.why ? ": " + c.why : "")));
    same.forEach((o) => add("same", "  " + o.kind + " " + o.name + (o.host ? " (" + o.host + ")" : "")));
    if (!changes.length) add("none", "no changes: the deployment is as kvm-compose.yaml says");
    $("#btn-apply").disabled = changes.length === 0;
  };
  $("#btn-plan").addEventListener("click", showPlan);
  $("#plan-close").addEventListener("click", () => { planCard.hidden = true; });
  $("#btn-apply").addEventListener("click", async () => {
    const r = await act("apply");
    if (r.status === 202) planCard.hidden = true;
    else $("#plan-msg").textContent = errorText(r);
  });

  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-log]");
    if (a) { e.preventDefault(); following = ""; follow(a.dataset.log, "log"); logEl.focus(); return; }
    const c = e.target.closest("button.console-open");
    if (c) { openConsole(name, c.dataset.guest, c); return; }
    const d = e.target.closest("button.inspect-open");
    if (d) openInspect(name, d.dataset.guest, "", d);
  });

  // Fresh server-rendered parts after an action, without a reload.
  const refresh = async () => {
    const resp = await fetch(location.pathname);
    if (resp.status === 401) { toLogin(); return; }
    if (!resp.ok) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    // The plots' switch is the user's once there were guests; before, the
    // server's default for their number.
    const fresh = $("#show-plots", doc);
    if (fresh && $("#show-plots") && !$$("#guests-table tr[data-guest]").length) $("#show-plots").checked = fresh.checked;
    const showPlots = $("#show-plots") && $("#show-plots").checked;
    ["#topology", "#guests", "#history", "#snap-guest", "#guest-count"].forEach((sel) => {
      const fresh = $(sel, doc), old = $(sel);
      if (fresh && old) old.replaceWith(fresh);
    });
    if ($("#show-plots")) $("#guests-table").classList.toggle("no-plots", !showPlots);
    const st = $("#deployment", doc);
    if (st) root.dataset.state = st.dataset.state;
    table.init();
    optionalImages();
    buttons();
    guests();
    topologyClicks(name);
  };

  eventHandlers.push((ev) => {
    if (ev.deployment !== name) return;
    if (ev.type === "action-started" && ev.uuid) follow(ev.uuid, ev.command ? (typeof ev.command === "string" ? ev.command : Object.keys(ev.command)[0]) : "");
    if (ev.type === "action-ended") refresh();
    if (ev.type === "deployment-state") guests();
  });
  // Back from a lost connection: what changed meanwhile.
  reconnectHandlers.push(refresh);

  // The guests table: 25 rows a page, a filter; plots load only for the
  // rows shown.
  const table = {
    page: 0, size: 25, status: {},
    init() {
      const f = $("#guest-filter");
      if (f) f.oninput = () => { this.page = 0; this.show(); };
      if ($("#page-prev")) $("#page-prev").onclick = () => { this.page--; this.show(); };
      if ($("#page-next")) $("#page-next").onclick = () => { this.page++; this.show(); };
      this.show();
    },
    show() {
      const q = ($("#guest-filter") ? $("#guest-filter").value : "").trim().toLowerCase();
      const rows = $$("#guests-table tbody tr[data-guest]");
      const match = rows.filter((tr) => !q || tr.dataset.guest.toLowerCase().includes(q) || (this.status[tr.dataset.guest] || "").includes(q));
      const pages = Math.max(1, Math.ceil(match.length / this.size));
      this.page = Math.max(0, Math.min(this.page, pages - 1));
      const from = this.page * this.size, shown = new Set(match.slice(from, from + this.size));
      rows.forEach((tr) => { tr.hidden = !shown.has(tr); });
      if ($("#page-info")) $("#page-info").textContent = match.length ? (from + 1) + "–" + Math.min(from + this.size, match.length) + " of " + match.length : "none";
      if ($("#page-prev")) $("#page-prev").disabled = this.page === 0;
      if ($("#page-next")) $("#page-next").disabled = this.page >= pages - 1;
      plots();
    },
  };

  // Status, links and resource use from the guests route, on the table
  // and on the topology.
  const guests = async () => {
    const r = await api("GET", "/api/deployments/" + name + "/guests");
    if (r.status === 0) return;
    live.set(true);
    if (!r.ok || !Array.isArray(r.data)) return;
    window.__guests = r.data;
    r.data.forEach((g) => {
      table.status[g.name] = g.status || "";
      markTopology(g);
      const tr = $('#guests-table tr[data-guest="' + CSS.escape(g.name) + '"]');
      if (!tr) return;
      $(".status", tr).textContent = g.status || "—";
      $(".status", tr).className = "status st-" + (g.status || "none");
      if (Array.isArray(g.interfaces) && g.interfaces.length) {
        const ips = $(".ips", tr);
        ips.textContent = "";
        g.interfaces.forEach((i) => {
          const d = document.createElement("div");
          d.textContent = i.name + " " + (i.ip || "—") + (i.leased ? " (lease)" : "");
          const imp = i.impairment;
          if (imp && !imp.up) { const s = document.createElement("span"); s.className = "link-down"; s.textContent = " link down"; d.appendChild(s); }
          else if (imp && impaired(imp)) { const s = document.createElement("span"); s.className = "link-impaired"; s.textContent = " impaired"; d.appendChild(s); }
          ips.appendChild(d);
        });
      }
      const res = g.resources;
      const img = $("img.plot", tr);
      if (img && res && res.sampled_at) img.dataset.sampled = res.sampled_at;
      // null: the guest's kind gives no such number.
      $(".cpu", tr).textContent = !res ? "—" : res.cpu_seconds == null ? "n/a" : res.cpu_seconds.toFixed(2);
      $(".mem", tr).textContent = !res ? "—" : res.memory_bytes == null ? "n/a" : fmtBytes(res.memory_bytes);
      $(".net", tr).textContent = res ? fmtBytes(res.rx_bytes) + " / " + fmtBytes(res.tx_bytes) : "—";
    });
    plots();
    inspectRefresh(r.data);
  };
  // Plots in the table: on for a few guests; the guest panel has one.
  document.addEventListener("change", (e) => {
    if (e.target.id !== "show-plots") return;
    $("#guests-table").classList.toggle("no-plots", !e.target.checked);
    plots();
  });
  table.init();
  buttons();
  topologyClicks(name);
  guests();
  setInterval(guests, 3000);
  // The log card opens on the running action, else on the last one.
  if (root.dataset.running) follow(root.dataset.running, "running");
  else if (root.dataset.last) follow(root.dataset.last, root.dataset.lastCommand || "last action");
  filesEditor(name);
}
