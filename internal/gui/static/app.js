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

  const act = async (action) => {
    msg.textContent = "";
    let r;
    if (action === "cancel") {
      r = await api("POST", "/api/deployments/" + name + "/cancel", following ? { uuid: following } : {});
    } else {
      const body = { command: action };
      if (action === "up") {
        body.provision = $("#opt-provision").checked;
        body.rerun_scripts = $("#opt-rerun").checked;
      }
      if (action === "snapshot") {
        body.snapshot = { sub_command: "create", guest: $("#snap-guest").value, name: $("#snap-name").value || undefined };
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
  };
  $$("#actions button[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));

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
    guests();
  };

  eventHandlers.push((ev) => {
    if (ev.deployment !== name) return;
    if (ev.type === "action-started" && ev.uuid) follow(ev.uuid, ev.command ? (typeof ev.command === "string" ? ev.command : Object.keys(ev.command)[0]) : "");
    if (ev.type === "action-ended") refresh();
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
      $(".cpu", tr).textContent = res ? res.cpu_seconds.toFixed(2) : "—";
      $(".mem", tr).textContent = res ? fmtBytes(res.memory_bytes) : "—";
      $(".net", tr).textContent = res ? fmtBytes(res.rx_bytes) + " / " + fmtBytes(res.tx_bytes) : "—";
    });
  };
  guests();
  setInterval(guests, 5000);
  if (root.dataset.running) follow(root.dataset.running, "running");
}

// --- console: raw terminal bytes over the console websocket.
let consoleWS = null;
function openConsole(dep, guest) {
  const pane = $("#console"), out = $("#console-out"), note = $("#console-msg");
  if (consoleWS) { consoleWS.onclose = null; consoleWS.close(); }
  pane.hidden = false;
  $("#console-guest").textContent = guest;
  out.textContent = "";
  note.textContent = "connecting…";
  const ws = new WebSocket(wsURL("/api/deployments/" + dep + "/guests/" + encodeURIComponent(guest) + "/console"));
  ws.binaryType = "arraybuffer";
  consoleWS = ws;
  const dec = new TextDecoder();
  ws.onopen = () => {
    note.textContent = "connected: click here and type";
    ws.send(JSON.stringify({ type: "resize", cols: 100, rows: 30 }));
    out.focus();
  };
  ws.onmessage = (m) => {
    const text = typeof m.data === "string" ? m.data : dec.decode(m.data, { stream: true });
    // No terminal emulator: colours and cursor moves are dropped.
    out.textContent += text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
    if (out.textContent.length > 200000) out.textContent = out.textContent.slice(-100000);
    out.scrollTop = out.scrollHeight;
  };
  ws.onclose = () => { note.textContent = "console closed (this guest's console may not be available)"; };
  out.onkeydown = (e) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const keys = { Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", ArrowUp: "\x1b[A", ArrowDown: "\x1b[B", ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D" };
    let s = keys[e.key];
    if (!s && e.ctrlKey && e.key.length === 1) s = String.fromCharCode(e.key.toUpperCase().charCodeAt(0) - 64);
    if (!s && e.key.length === 1 && !e.metaKey) s = e.key;
    if (s) { e.preventDefault(); ws.send(new TextEncoder().encode(s)); }
  };
  $("#console-close").onclick = () => { ws.close(); pane.hidden = true; };
}

document.addEventListener("DOMContentLoaded", () => {
  optionalImages();
  if (document.body.dataset.page === "login") return;
  followEvents();
  membersTable();
  jsonPanes();
  createPage();
  deploymentPage();
});
