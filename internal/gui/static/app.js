// TestbedOS GUI: a little JavaScript of our own, no library. Pages are
// rendered by the server; this file adds live updates (events, log
// streams), inline YAML validation and the action buttons.
"use strict";

const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const wsURL = (path) => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;

async function api(method, path, body, raw) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.body = raw ? body : JSON.stringify(body);
    opts.headers["Content-Type"] = raw ? "application/yaml" : "application/json";
  }
  const resp = await fetch(path, opts);
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  return { status: resp.status, ok: resp.ok, data };
}

function errorText(r) {
  if (r.data && r.data.error && r.data.error.message) return r.data.error.message;
  return "HTTP " + r.status;
}

// Plots come from the monitoring routes; until they answer, say so.
function optionalImages() {
  const fallback = (img) => {
    if (img.dataset.missing) return;
    img.dataset.missing = "1";
    img.hidden = true;
    const span = document.createElement("span");
    span.className = "muted plot-missing";
    span.textContent = "no samples yet";
    img.after(span);
  };
  $$("img[data-optional]").forEach((img) => {
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("loading") !== "lazy") fallback(img);
    img.addEventListener("error", () => fallback(img), { once: true });
  });
}

function fmtBytes(n) {
  if (n === undefined || n === null) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}

function stateText(s) {
  if (typeof s === "string") return s;
  if (s && s.failed !== undefined) {
    const c = s.failed;
    const name = typeof c === "string" ? c : Object.keys(c || {})[0];
    return "failed(" + String(name).replace(/_/g, "-") + ")";
  }
  return String(s);
}

function stateKind(s) { return typeof s === "string" ? s : "failed"; }

function setState(name, st) {
  $$('[data-state-of="' + CSS.escape(name) + '"]').forEach((el) => {
    el.textContent = stateText(st);
    el.className = "state state-" + stateKind(st);
  });
}

// Events: deployment states everywhere, actions on the deployment page.
const eventHandlers = [];
function followEvents() {
  let ws;
  const open = () => {
    ws = new WebSocket(wsURL("/api/events"));
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.type === "deployment-state" && ev.deployment && ev.state !== undefined) setState(ev.deployment, ev.state);
      eventHandlers.forEach((h) => h(ev));
    };
    ws.onclose = (e) => { if (e.code !== 1000) setTimeout(open, 2000); };
  };
  open();
}

function membersTable() {
  const table = $("#members-table");
  if (!table) return;
  api("GET", "/api/cluster").then((r) => {
    const body = $("tbody", table);
    body.textContent = "";
    const members = (r.ok && r.data && r.data.members) || [];
    if (!r.ok || members.length === 0) {
      const tr = body.insertRow();
      const td = tr.insertCell();
      td.colSpan = 4;
      td.className = "muted";
      td.textContent = r.ok ? "This host alone: no client hosts have joined." : errorText(r);
      return;
    }
    members.forEach((m) => {
      const tr = body.insertRow();
      [m.name, (m.host && m.host.ip) || m.url, m.last_heartbeat ? new Date(m.last_heartbeat).toLocaleString() : "never", m.misses]
        .forEach((v) => { tr.insertCell().textContent = v; });
    });
  });
}

function jsonPanes() {
  $$("pre[data-src], textarea[data-src]").forEach((el) => {
    api("GET", el.dataset.src).then((r) => {
      const text = r.ok ? JSON.stringify(r.data, null, 2) : errorText(r);
      if (el.tagName === "TEXTAREA") el.value = text; else el.textContent = text;
    });
  });
  const form = $("#host-form");
  if (!form) return;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const msg = $("#host-msg");
    let body;
    try { body = JSON.parse($("#host-config").value); } catch (err) { msg.textContent = "not JSON: " + err.message; return; }
    const r = await api("POST", "/api/config/host", body);
    msg.textContent = r.ok ? "saved" : errorText(r);
    msg.className = r.ok ? "ok" : "error-inline";
  });
}

// --- create page: inline validation with the line of each problem marked.
function createPage() {
  const ta = $("#yaml"), gutter = $("#gutter"), list = $("#problems"), ok = $("#valid");
  if (!ta) return;
  let bad = new Set();
  const drawGutter = () => {
    const n = ta.value.split("\n").length;
    gutter.textContent = "";
    for (let i = 1; i <= n; i++) {
      const s = document.createElement("span");
      s.textContent = String(i);
      if (bad.has(i)) { s.className = "bad"; s.id = "gutter-line-" + i; }
      gutter.appendChild(s);
    }
    gutter.scrollTop = ta.scrollTop;
  };
  const goto = (line) => {
    const lines = ta.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    ta.focus();
    ta.setSelectionRange(start, start + (lines[line - 1] || "").length);
  };
  const show = (problems) => {
    list.textContent = "";
    bad = new Set(problems.filter((p) => p.line > 0).map((p) => p.line));
    problems.forEach((p) => {
      const li = document.createElement("li");
      li.dataset.line = p.line;
      if (p.line > 0) {
        const b = document.createElement("b");
        b.textContent = "line " + p.line;
        li.append(b, ": ");
      }
      if (p.field) {
        const c = document.createElement("code");
        c.textContent = p.field;
        li.append(c, " ");
      }
      li.append(p.message);
      list.appendChild(li);
    });
    ok.hidden = problems.length !== 0 || ta.value.trim() === "";
    drawGutter();
  };
  list.addEventListener("click", (e) => {
    const li = e.target.closest("li");
    if (li && +li.dataset.line > 0) goto(+li.dataset.line);
  });
  // Problems the server rendered (after a refused submit).
  bad = new Set($$("li", list).map((li) => +li.dataset.line).filter((n) => n > 0));
  let timer = null, seq = 0;
  const validate = () => {
    const mine = ++seq;
    api("POST", "/api/validate/yaml", ta.value, true).then((r) => {
      if (mine !== seq) return;
      if (r.status === 200 || r.status === 422) show((r.data && r.data.problems) || []);
      else show([{ line: 0, field: "", message: errorText(r) }]);
    });
  };
  ta.addEventListener("input", () => { drawGutter(); clearTimeout(timer); timer = setTimeout(validate, 250); });
  ta.addEventListener("scroll", () => { gutter.scrollTop = ta.scrollTop; });
  $("#file").addEventListener("change", (e) => {
    const f = e.target.files[0];
    if (!f) return;
    f.text().then((t) => { ta.value = t; drawGutter(); validate(); });
  });
  drawGutter();
  if (ta.value.trim() !== "") validate();
}

// --- deployment page.
function deploymentPage() {
  const root = $("#deployment");
  if (!root) return;
  const name = root.dataset.name;
  const logEl = $("#log"), title = $("#log-title"), msg = $("#action-msg");
  let stream = null, following = "";

  const follow = (uuid, label) => {
    if (following === uuid) return;
    if (stream) { stream.onclose = null; stream.close(); }
    following = uuid;
    logEl.textContent = "";
    title.textContent = (label || "") + " " + uuid;
    const ws = new WebSocket(wsURL("/api/logs/" + encodeURIComponent(uuid) + "/stream"));
    stream = ws;
    ws.onmessage = (m) => {
      const atEnd = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 4;
      const line = document.createElement("div");
      line.className = "line";
      line.textContent = m.data;
      logEl.appendChild(line);
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
        text = "— ended: " + ["success", "failed", "cancelled", "interrupted"][o.error_code] + ", state " + stateText(o.end_state);
      } catch (err) { /* no outcome */ }
      end.textContent = text;
      logEl.appendChild(end);
      logEl.scrollTop = logEl.scrollHeight;
    };
  };

  const act = async (action, extra) => {
    msg.textContent = "";
    msg.className = "muted";
    let r;
    if (action === "cancel") {
      r = await api("POST", "/api/deployments/" + name + "/cancel", following ? { uuid: following } : {});
    } else {
      const body = Object.assign({ command: action }, extra || {});
      if (action === "up") {
        body.provision = $("#opt-provision").checked;
        body.rerun_scripts = $("#opt-rerun").checked;
      }
      r = await api("POST", "/api/deployments/" + name + "/action", body);
    }
    if (r.status === 202) {
      msg.textContent = action + " accepted";
      if (action !== "cancel") follow(r.data.uuid, action);
    } else {
      msg.textContent = errorText(r);
      msg.className = "error-inline";
    }
    return r;
  };
  $$("#actions button[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));

  // Snapshots: for guests whose kind has them (libvirt); the buttons say
  // why they are off for the others.
  const snapGuest = () => $("#snap-guest");
  const snapButtons = () => $$("#snapshots button[data-snapshot]");
  const snapState = async () => {
    const sel = snapGuest();
    const opt = sel && sel.selectedOptions[0];
    const can = !!(opt && opt.dataset.snapshots);
    snapButtons().forEach((b) => {
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
    act("snapshot", { snapshot: { sub_command: b.dataset.snapshot, guest: snapGuest().value, name: $("#snap-name").value || undefined } });
  });
  snapState();

  // Apply: first the plan, as a diff; then apply it.
  const planCard = $("#plan-card"), planEl = $("#plan"), planMsg = $("#plan-msg");
  const showPlan = async () => {
    planCard.hidden = false;
    planEl.textContent = "loading…";
    planMsg.textContent = "";
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
    planMsg.textContent = r.status === 202 ? "apply started" : errorText(r);
    if (r.status === 202) planCard.hidden = true;
  });

  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-log]");
    if (a) { e.preventDefault(); following = ""; follow(a.dataset.log, "log"); return; }
    const c = e.target.closest("button.console-open");
    if (c) openConsole(name, c.dataset.guest);
  });

  // Fresh server-rendered parts after an action, without a reload.
  const refresh = async () => {
    const resp = await fetch(location.pathname);
    if (!resp.ok) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    ["#topology", "#guests", "#history", "#snap-guest"].forEach((sel) => {
      const fresh = $(sel, doc), old = $(sel);
      if (fresh && old) old.replaceWith(fresh);
    });
    optionalImages();
    snapState();
    guests();
  };

  eventHandlers.push((ev) => {
    if (ev.deployment !== name) return;
    if (ev.type === "action-started" && ev.uuid) follow(ev.uuid, ev.command ? (typeof ev.command === "string" ? ev.command : Object.keys(ev.command)[0]) : "");
    if (ev.type === "action-ended") refresh();
    if (ev.type === "deployment-state") guests();
  });

  // Status and resource use, from the guests route (when it is there).
  const guests = async () => {
    const r = await api("GET", "/api/deployments/" + name + "/guests");
    if (!r.ok || !Array.isArray(r.data)) return;
    r.data.forEach((g) => {
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
          ips.appendChild(d);
        });
      }
      const res = g.resources;
      const img = $("img.plot", tr);
      if (img && res && res.sampled_at && img.dataset.sampled !== res.sampled_at) {
        img.dataset.sampled = res.sampled_at;
        if (img.dataset.missing) { img.hidden = false; delete img.dataset.missing; $$(".plot-missing", tr).forEach((x) => x.remove()); }
        img.src = img.src.replace(/&t=[^&]*/, "") + "&t=" + encodeURIComponent(res.sampled_at);
      }
      // null: the guest's kind gives no such number.
      $(".cpu", tr).textContent = !res ? "—" : res.cpu_seconds == null ? "n/a" : res.cpu_seconds.toFixed(2);
      $(".mem", tr).textContent = !res ? "—" : res.memory_bytes == null ? "n/a" : fmtBytes(res.memory_bytes);
      $(".net", tr).textContent = res ? fmtBytes(res.rx_bytes) + " / " + fmtBytes(res.tx_bytes) : "—";
    });
  };
  guests();
  setInterval(guests, 3000);
  // The log card opens on the running action, else on the last one.
  if (root.dataset.running) follow(root.dataset.running, "running");
  else if (root.dataset.last) follow(root.dataset.last, root.dataset.lastCommand || "last action");
}

// --- console: raw terminal bytes over the console websocket, shown by
// the small terminal of term.js.
let consoleWS = null;
function openConsole(dep, guest) {
  const pane = $("#console"), out = $("#console-out"), note = $("#console-msg");
  if (consoleWS) { consoleWS.onclose = null; consoleWS.close(); }
  pane.hidden = false;
  $("#console-guest").textContent = guest;
  const term = new Term(out);
  window.__term = term;
  term.reset();
  note.textContent = "connecting…";
  const ws = new WebSocket(wsURL("/api/deployments/" + encodeURIComponent(dep) + "/guests/" + encodeURIComponent(guest) + "/console"));
  ws.binaryType = "arraybuffer";
  consoleWS = ws;
  const dec = new TextDecoder(), enc = new TextEncoder();
  const send = (s) => { if (s && ws.readyState === WebSocket.OPEN) ws.send(enc.encode(s)); };
  let size = { cols: 0, rows: 0 };
  const resize = () => {
    if (ws.readyState !== WebSocket.OPEN || pane.hidden) return;
    const now = termSize(out);
    if (now.cols === size.cols && now.rows === size.rows) return;
    size = now;
    ws.send(JSON.stringify({ type: "resize", cols: now.cols, rows: now.rows }));
  };
  ws.onopen = () => {
    note.textContent = "connected to " + guest + ": click the console and type";
    resize();
    out.focus();
  };
  ws.onmessage = (m) => term.write(typeof m.data === "string" ? m.data : dec.decode(m.data, { stream: true }));
  ws.onclose = (e) => {
    note.textContent = "console closed" + (e.reason ? ": " + e.reason : " (this guest's console may not be available)");
  };
  out.onkeydown = (e) => {
    const s = keyBytes(e);
    if (!s) return;
    // Ctrl-C with a selection copies it; without, it interrupts the guest.
    if (e.ctrlKey && e.key.toLowerCase() === "c" && String(getSelection())) return;
    e.preventDefault();
    send(s);
  };
  out.onpaste = (e) => { e.preventDefault(); send(e.clipboardData.getData("text").replace(/\r?\n/g, "\r")); };
  window.onresize = resize;
  $("#console-close").onclick = () => { ws.close(); pane.hidden = true; };
}

// --- dashboard: counts by state follow the events; the host plot is
// drawn again every 15 s.
function dashboard() {
  const by = $("#by-state");
  if (!by) return;
  let timer = null;
  eventHandlers.push((ev) => {
    if (ev.type !== "deployment-state") return;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const resp = await fetch("/");
      if (!resp.ok) return;
      const fresh = $("#by-state", new DOMParser().parseFromString(await resp.text(), "text/html"));
      if (fresh) $("#by-state").replaceWith(fresh);
    }, 300);
  });
  setInterval(() => {
    const img = $("#host img.plot");
    if (img) { img.hidden = false; img.src = "/api/monitor/host?format=svg&t=" + Date.now(); }
    membersTable();
  }, 15000);
}

document.addEventListener("DOMContentLoaded", () => {
  optionalImages();
  if (document.body.dataset.page === "login") return;
  followEvents();
  membersTable();
  jsonPanes();
  createPage();
  deploymentPage();
  dashboard();
});
