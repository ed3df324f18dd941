// TestbedOS GUI, the deployment page's ways in: the topology marks live
// state (guest stopped, link down or impaired) and opens a guest's panel
// (console, exec, each link's impairments and a capture download); the
// project files editor (kvm-compose.yaml and scripts, edited or uploaded,
// saved with LF line endings).
"use strict";

function impaired(imp) {
  return !!(imp && (imp.delay_ms || imp.jitter_ms || imp.loss_pct || imp.rate_kbit || imp.corrupt_pct));
}

// markTopology shows one guest's state on the picture.
function markTopology(g) {
  const node = document.getElementById("topo-guest-" + g.name);
  if (node) {
    node.classList.toggle("stopped", g.status !== "running");
    node.dataset.status = g.status || "";
  }
  if (node) node.classList.toggle("has-down", (g.interfaces || []).some((i) => i.impairment && !i.impairment.up));
  (g.interfaces || []).forEach((i) => {
    const link = document.getElementById("topo-link-" + g.name + "-" + i.name);
    if (!link) return;
    const imp = i.impairment;
    link.classList.toggle("down", !!imp && !imp.up);
    link.classList.toggle("impaired", !!imp && imp.up && impaired(imp));
    const t = link.querySelector("title");
    if (t) t.textContent = "link " + g.name + " " + i.name + " to " + i.switch + (i.ip ? " " + i.ip : "") + (i.leased ? " (lease)" : "") +
      (imp && !imp.up ? ": DOWN" : impaired(imp) ? ": impaired" : "");
  });
}

function topologyClicks(dep) {
  const topo = document.getElementById("topology");
  if (!topo) return;
  const open = (e) => {
    const link = e.target.closest(".link");
    const g = e.target.closest(".guest");
    if (link) openInspect(dep, link.dataset.guest, link.dataset.iface, null);
    else if (g) openInspect(dep, g.dataset.guest, "", g);
  };
  topo.onclick = open;
  topo.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(e); } };
}

const inspectState = { dep: "", guest: "", iface: "" };

function openInspect(dep, guest, iface, opener) {
  const pane = $("#inspect");
  Object.assign(inspectState, { dep, guest, iface, opener });
  pane.hidden = false;
  $("#inspect-guest").textContent = guest;
  $("#exec-out").hidden = true;
  $$("#topology .guest.selected").forEach((x) => x.classList.remove("selected"));
  const node = document.getElementById("topo-guest-" + guest);
  if (node) node.classList.add("selected");
  const img = $("#inspect-plot");
  img.dataset.src = "/api/monitor/deployments/" + encodeURIComponent(dep) + "/guests/" + encodeURIComponent(guest) + "?format=svg";
  img.alt = "resource use of " + guest;
  img.hidden = false;
  inspectRefresh(window.__guests || [], true);
  plots();
  $("#inspect-close").focus();
}

function closeInspect() {
  $("#inspect").hidden = true;
  $$("#topology .guest.selected").forEach((x) => x.classList.remove("selected"));
  const o = inspectState.opener;
  inspectState.guest = "";
  if (o && document.contains(o)) o.focus();
}

// inspectRefresh draws the open panel from the guests route's answer; the
// forms are made once per opening so typing is not lost to a poll.
function inspectRefresh(list, rebuild) {
  const st = inspectState;
  if (!st.guest || $("#inspect").hidden) return;
  const g = list.find((x) => x.name === st.guest);
  const status = $("#inspect-status");
  status.textContent = g ? g.status : "unknown";
  if (g && g.resources && g.resources.sampled_at) $("#inspect-plot").dataset.sampled = g.resources.sampled_at;
  status.className = "status st-" + (g ? g.status : "none");
  // Power follows the guest's status: a stopped guest starts, a running one
  // stops or restarts.
  $$("#inspect .power-btn").forEach((b) => {
    b.setAttribute("aria-label", b.textContent + " " + st.guest);
    b.disabled = !g || (b.dataset.power === "running" ? g.status !== "stopped" : g.status !== "running");
  });
  if (!rebuild) return;
  const box = $("#inspect-links");
  box.textContent = "";
  ((g && g.interfaces) || []).forEach((i) => box.appendChild(linkForm(st.dep, st.guest, i)));
  if (!box.children.length) box.textContent = "No links.";
  const focus = st.iface && box.querySelector('[data-iface="' + CSS.escape(st.iface) + '"]');
  if (focus) { focus.classList.add("focus"); focus.scrollIntoView({ block: "nearest" }); }
}

// linkForm is one interface: its state, an impairments form, a capture.
function linkForm(dep, guest, i) {
  const base = "/api/deployments/" + encodeURIComponent(dep) + "/guests/" + encodeURIComponent(guest) + "/interfaces/" + encodeURIComponent(i.name);
  const div = document.createElement("div");
  div.className = "iface";
  div.dataset.iface = i.name;
  const id = (s) => "if-" + i.name + "-" + s;
  const imp = i.impairment || { up: true };
  div.innerHTML = '<h4></h4><form><label><input type="checkbox" name="up"> link up</label>' +
    ["delay_ms:delay ms", "jitter_ms:jitter ms", "loss_pct:loss %", "rate_kbit:rate kbit/s", "corrupt_pct:corrupt %"].map((f) => {
      const [k, l] = f.split(":");
      return '<label for="' + id(k) + '">' + l + '</label><input type="number" min="0" step="any" name="' + k + '" id="' + id(k) + '">';
    }).join("") +
    '<button type="submit">Set</button></form><p><button type="button" class="capture">Capture 10 s</button> <span class="msg muted" role="status"></span></p>';
  $("h4", div).textContent = i.name + " on " + i.switch + (i.ip ? " · " + i.ip : "") + (i.leased ? " (lease)" : "");
  const form = $("form", div), msg = $(".msg", div);
  form.up.checked = imp.up !== false;
  form.up.setAttribute("aria-label", "link " + i.name + " up");
  $("button[type=submit]", form).setAttribute("aria-label", "Set impairments of " + i.name);
  $(".capture", div).setAttribute("aria-label", "Capture 10 s on " + i.name);
  ["delay_ms", "jitter_ms", "loss_pct", "rate_kbit", "corrupt_pct"].forEach((k) => { form[k].value = imp[k] || 0; });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { up: form.up.checked };
    ["delay_ms", "jitter_ms", "rate_kbit"].forEach((k) => { body[k] = Math.round(+form[k].value || 0); });
    ["loss_pct", "corrupt_pct"].forEach((k) => { body[k] = +form[k].value || 0; });
    const b = $("button[type=submit]", form);
    b.disabled = true;
    const r = await api("PUT", base, body);
    b.disabled = false;
    msg.textContent = r.ok ? (body.up ? "set" : "link down") : errorText(r);
    if (r.ok) notice(guest + " " + i.name + ": " + (body.up ? "impairments set" : "link down"));
    const l = (window.__guests || []).find((x) => x.name === guest);
    if (r.ok && l) {
      const it = (l.interfaces || []).find((x) => x.name === i.name);
      if (it) it.impairment = r.data;
      markTopology(l);
    }
  });
  // A capture runs until stopped: read it for 10 s, then save the pcap.
  $(".capture", div).addEventListener("click", async (e) => {
    const b = e.target;
    b.disabled = true;
    msg.textContent = "capturing for 10 s…";
    const ctl = new AbortController(), chunks = [];
    setTimeout(() => ctl.abort(), 10000);
    try {
      const resp = await fetch(base + "/capture", { signal: ctl.signal });
      if (resp.status === 401) { toLogin(); return; }
      if (!resp.ok) { msg.textContent = "capture: HTTP " + resp.status; return; }
      const rd = resp.body.getReader();
      for (;;) { const { done, value } = await rd.read(); if (done) break; chunks.push(value); }
    } catch (err) { /* the 10 s are up */ } finally { b.disabled = false; }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob(chunks, { type: "application/vnd.tcpdump.pcap" }));
    a.download = guest + "-" + i.name + ".pcap";
    document.body.appendChild(a);
    a.click();
    a.remove();
    msg.textContent = "saved " + a.download;
  });
  return div;
}

document.addEventListener("DOMContentLoaded", () => {
  if (!$("#inspect")) return;
  $("#inspect-close").addEventListener("click", closeInspect);
  $("#console-close").addEventListener("click", closeConsole);
  $("#inspect-console").addEventListener("click", (e) => openConsole(inspectState.dep, inspectState.guest, e.target));
  // Power is an action of its own: the log card follows it through its
  // action-started event, the guests poll shows the new status.
  $$("#inspect .power-btn").forEach((b) => b.addEventListener("click", async () => {
    const st = inspectState, want = b.dataset.power;
    $$("#inspect .power-btn").forEach((x) => { x.disabled = true; });
    const r = await api("POST", "/api/deployments/" + encodeURIComponent(st.dep) + "/guests/" + encodeURIComponent(st.guest) + "/power", { state: want });
    notice(r.ok ? st.guest + ": " + b.textContent.toLowerCase() + " started" : errorText(r));
  }));
  $("#exec-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const cmd = $("#exec-cmd").value.trim();
    if (!cmd) return;
    const out = $("#exec-out"), b = $("#exec-run");
    b.disabled = true;
    out.hidden = false;
    out.textContent = "running…";
    const r = await api("POST", "/api/deployments/" + encodeURIComponent(inspectState.dep) + "/guests/" + encodeURIComponent(inspectState.guest) + "/exec",
      { command: ["sh", "-c", cmd] });
    b.disabled = false;
    out.textContent = r.ok ? (r.data.stdout || "") + (r.data.stderr || "") + "\n[exit " + r.data.exit_code + "]" : errorText(r);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("#inspect").hidden && $("#inspect").contains(document.activeElement)) closeInspect();
  });
});

// --- the project files: pick, edit, save (LF line endings), upload, delete.
function filesEditor(dep) {
  const pick = $("#file-pick"), text = $("#file-text"), msg = $("#file-msg");
  if (!pick) return;
  const base = "/api/deployments/" + encodeURIComponent(dep) + "/files";
  const url = (p) => base + "/" + p.split("/").map(encodeURIComponent).join("/");
  let current = "", dirty = false;
  const enable = (on) => { text.disabled = !on; $("#file-save").disabled = !on; $("#file-delete").disabled = !on || current === "kvm-compose.yaml"; };
  const list = async (select) => {
    const r = await api("GET", base);
    if (!r.ok) { msg.textContent = errorText(r); return; }
    pick.textContent = "";
    r.data.files.forEach((f) => {
      const o = document.createElement("option");
      o.value = f.path;
      o.textContent = f.path + (f.executable ? " *" : "");
      pick.appendChild(o);
    });
    const want = select || current || "kvm-compose.yaml";
    if ($$("option", pick).some((o) => o.value === want)) pick.value = want;
    if (pick.value) load(pick.value);
  };
  const load = async (p) => {
    const resp = await fetch(url(p));
    if (resp.status === 401) { toLogin(); return; }
    current = p;
    dirty = false;
    if (!resp.ok) { msg.textContent = "cannot open " + p + ": HTTP " + resp.status; enable(false); return; }
    text.value = await resp.text();
    enable(true);
    msg.textContent = "";
    $("#file-problems").textContent = "";
  };
  const save = async (p, body) => {
    const r = await api("PUT", url(p), body.replace(/\r\n/g, "\n"), "application/octet-stream");
    if (!r.ok) { notice(p + ": " + errorText(r), true); return false; }
    notice(p + " saved");
    return true;
  };
  pick.addEventListener("change", async () => {
    if (dirty && !(await ask("Drop the changes to " + current + "?", "Drop"))) { pick.value = current; return; }
    load(pick.value);
  });
  text.addEventListener("input", () => { dirty = true; msg.textContent = "not saved"; });
  $("#file-save").addEventListener("click", async () => {
    if (!current) return;
    if (await save(current, text.value)) {
      dirty = false;
      msg.textContent = "saved";
      if (current === "kvm-compose.yaml") check();
    }
  });
  $("#file-delete").addEventListener("click", async () => {
    if (!current || !(await ask("Delete " + current + " from the project folder?", "Delete"))) return;
    const r = await api("DELETE", url(current));
    if (r.status === 204) { notice(current + " deleted"); current = ""; list(); } else notice(errorText(r), true);
  });
  $("#file-new-btn").addEventListener("click", async () => {
    const p = $("#file-new").value.trim();
    if (!p) { notice("Type a name for the new file first.", true); return; }
    const body = p.endsWith(".sh") ? "#!/bin/sh\nset -e\n" : "";
    if (await save(p, body)) { $("#file-new").value = ""; current = p; list(p); }
  });
  $("#file-upload").addEventListener("change", async (e) => {
    let last = "";
    for (const f of Array.from(e.target.files)) {
      if (await save(f.name, await f.text())) last = f.name;
    }
    e.target.value = "";
    if (last) list(last);
  });
  // After saving the YAML: the problems the files of the folder give.
  const check = async () => {
    const files = $$("option", pick).map((o) => o.value);
    const q = new URLSearchParams({ check_files: "1" });
    files.forEach((f) => q.append("file", f));
    const r = await api("POST", "/api/validate/yaml?" + q, text.value, "application/yaml");
    const probs = (r.data && r.data.problems) || [];
    problemList($("#file-problems"), probs, (line) => selectLine(text, line));
    if (probs.length) msg.textContent = "saved, with problems";
  };
  list();
}
