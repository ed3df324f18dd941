// TestbedOS GUI: a little JavaScript of our own. Pages are rendered by the
// server; this file adds what every page shares: calls to the API (a 401
// sends the user to log in), the events websocket (reconnected with
// backoff; a banner says when the page is not live), notices that fade, a
// confirmation dialog, and the dashboard, configuration and create pages.
// deployment.js and inspect.js add the deployment page.
"use strict";

const $ = (sel, root) => (root || document).querySelector(sel);
const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const wsURL = (path) => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;

// toLogin sends the user to the login form, back here afterwards.
function toLogin() {
  if (document.body.dataset.page === "login") return;
  location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
}

// live tracks whether the page is in touch with the server.
const live = {
  ok: true,
  set(ok) {
    this.ok = ok;
    const b = $("#not-live");
    if (b) b.hidden = ok;
  },
};

async function api(method, path, body, type) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.body = type ? body : JSON.stringify(body);
    opts.headers["Content-Type"] = type || "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    live.set(false);
    return { status: 0, ok: false, data: { error: { message: "the server does not answer: " + e.message } } };
  }
  if (resp.status === 401) { toLogin(); return { status: 401, ok: false, data: { error: { message: "your session has ended: log in again" } } }; }
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  return { status: resp.status, ok: resp.ok, data };
}

function errorText(r) {
  if (r.data && r.data.error && r.data.error.message) return r.data.error.message;
  return "HTTP " + r.status;
}

// notice shows a short message that fades after a few seconds.
function notice(text, isError) {
  const box = $("#notices");
  if (!box) return;
  const n = document.createElement("div");
  n.className = "notice" + (isError ? " error" : "");
  n.textContent = text;
  box.appendChild(n);
  setTimeout(() => n.classList.add("fade"), isError ? 8000 : 3500);
  setTimeout(() => n.remove(), isError ? 9000 : 4500);
}

// ask shows the confirmation dialog; resolves true when the user says yes.
function ask(text, yes) {
  const d = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-yes").textContent = yes || "Yes";
  d.returnValue = "";
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.showModal();
    $("#confirm-no").focus();
  });
}

// Plots come from the monitoring routes; until they answer, say so.
function optionalImages(root) {
  const fallback = (img) => {
    if (img.dataset.missing) return;
    img.dataset.missing = "1";
    img.hidden = true;
    const span = document.createElement("span");
    span.className = "muted plot-missing";
    span.textContent = "no samples yet";
    img.after(span);
  };
  $$("img[data-optional]", root).forEach((img) => {
    if (img.src && img.complete && img.naturalWidth === 0 && img.getAttribute("loading") !== "lazy") fallback(img);
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

// stateText is a state as the CLI shows it; code, when given, is the error
// code of the action that left it: a failed state a cancel left reads
// cancelled(up).
function stateText(s, code) {
  if (typeof s === "string") return s;
  if (s && s.failed !== undefined) {
    const c = s.failed;
    const name = typeof c === "string" ? c : Object.keys(c || {})[0];
    return (code === ERROR_CANCELLED ? "cancelled(" : "failed(") + String(name).replace(/_/g, "-") + ")";
  }
  return String(s);
}
const ERROR_CANCELLED = 2;

function stateKind(s) { return typeof s === "string" ? s : "failed"; }

function setState(name, st, code) {
  $$('[data-state-of="' + CSS.escape(name) + '"]').forEach((el) => {
    el.textContent = stateText(st, code);
    el.className = "state state-" + stateKind(st);
  });
}

// Events: deployment states everywhere, actions on the deployment page.
// A closed websocket is opened again with backoff (1 s doubling to 15 s);
// while it is closed the page says it is not live, and a probe tells a
// restarted server (401: log in again) from one that is away.
const eventHandlers = [];
const reconnectHandlers = [];
function followEvents() {
  let delay = 1000, everOpen = false;
  const ended = new Map();
  const open = () => {
    const ws = new WebSocket(wsURL("/api/events"));
    ws.onopen = () => {
      live.set(true);
      if (everOpen) reconnectHandlers.forEach((h) => h());
      everOpen = true;
      delay = 1000;
    };
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      // An action's end comes before the state it left: keep its code.
      if (ev.type === "action-ended" && ev.uuid) ended.set(ev.uuid, ev.error_code);
      if (ev.type === "deployment-state" && ev.deployment && ev.state !== undefined) {
        setState(ev.deployment, ev.state, ended.get(ev.uuid));
        ended.delete(ev.uuid);
      }
      eventHandlers.forEach((h) => h(ev));
    };
    ws.onclose = async () => {
      live.set(false);
      await api("GET", "/api/config/status"); // a 401 sends the user to log in
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  window.addEventListener("pagehide", () => { live.set = () => {}; });
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
    if (r.ok) notice("host.json saved");
  });
}

// problemList fills ul with problems (line, field, message); a click on one
// with a line calls goto(line).
function problemList(ul, problems, goto) {
  ul.textContent = "";
  problems.forEach((p) => {
    const li = document.createElement("li");
    li.dataset.line = p.line;
    li.tabIndex = 0;
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
    ul.appendChild(li);
  });
  const go = (e) => {
    const li = e.target.closest("li");
    if (li && +li.dataset.line > 0 && goto) goto(+li.dataset.line);
  };
  ul.onclick = go;
  ul.onkeydown = (e) => { if (e.key === "Enter") go(e); };
}

// selectLine selects line n of a textarea.
function selectLine(ta, line) {
  const lines = ta.value.split("\n");
  let start = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
  ta.focus();
  ta.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

// --- create page: inline validation with the line of each problem marked,
// the files the YAML names checked against the project files chosen.
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
  const show = (problems) => {
    bad = new Set(problems.filter((p) => p.line > 0).map((p) => p.line));
    problemList(list, problems, (line) => selectLine(ta, line));
    ok.hidden = problems.length !== 0 || ta.value.trim() === "";
    drawGutter();
  };
  bad = new Set($$("li", list).map((li) => +li.dataset.line).filter((n) => n > 0));
  problemList(list, [], null);
  let timer = null, seq = 0;
  const validate = () => {
    const mine = ++seq;
    const q = new URLSearchParams({ check_files: "1" });
    Array.from($("#files").files || []).forEach((f) => q.append("file", f.name));
    api("POST", "/api/validate/yaml?" + q, ta.value, "application/yaml").then((r) => {
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
    f.text().then((t) => { ta.value = t.replace(/\r\n/g, "\n"); drawGutter(); validate(); });
  });
  $("#files").addEventListener("change", validate);
  drawGutter();
  if (ta.value.trim() !== "") validate();
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
      if (resp.status === 401) { toLogin(); return; }
      if (!resp.ok) return;
      const fresh = $("#by-state", new DOMParser().parseFromString(await resp.text(), "text/html"));
      if (fresh) $("#by-state").replaceWith(fresh);
    }, 300);
  });
  setInterval(() => {
    plots();
    membersTable();
  }, 15000);
}

// plots draws the monitoring plots again, for the time range chosen.
function plots() {
  const range = $("#plot-range") ? $("#plot-range").value : "";
  $$("img.plot[data-src]").forEach((img) => {
    if (img.parentElement.closest("[hidden], .no-plots")) return;
    const u = new URL(img.dataset.src, location.href);
    if (range) u.searchParams.set("range", range);
    // A guest's plot is drawn again when it has a new sample; the host's
    // each time this runs (every 15 s).
    const t = img.dataset.sampled || (img.closest("#host-plot") ? String(Date.now()) : "");
    if (t) u.searchParams.set("t", t);
    const src = u.pathname + u.search;
    if (img.getAttribute("src") === src) return;
    if (img.dataset.missing) { img.hidden = false; delete img.dataset.missing; img.parentElement.querySelectorAll(".plot-missing").forEach((x) => x.remove()); }
    img.src = src;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "login") return;
  optionalImages();
  followEvents();
  membersTable();
  jsonPanes();
  createPage();
  dashboard();
  if ($("#plot-range")) $("#plot-range").addEventListener("change", plots);
  if (typeof deploymentPage === "function") deploymentPage();
  plots();
});
