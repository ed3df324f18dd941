// TestbedOS GUI: a guest's console in a side panel, drawn by xterm.js (a
// real terminal emulator: colours, cursor addressing, the alternate screen,
// scroll regions). Raw bytes go both ways over the console websocket; a
// text frame {"type":"resize"} follows the panel's size (the fit addon).
// Keyboard: every key goes to the guest, Escape too; Escape then Tab (or
// Shift-Tab) leaves the terminal, as the hint under it says.
"use strict";

const consoleState = { ws: null, term: null, fit: null, observer: null, opener: null };

function closeConsole() {
  const c = consoleState;
  if (c.ws) { c.ws.onclose = null; c.ws.close(); c.ws = null; }
  if (c.observer) { c.observer.disconnect(); c.observer = null; }
  if (c.term) { c.term.dispose(); c.term = null; }
  const pane = document.getElementById("console");
  if (pane) pane.hidden = true;
  if (c.opener && document.contains(c.opener)) c.opener.focus();
}

// consoleText is what the terminal shows, line by line (the tests read it).
function consoleText() {
  const t = consoleState.term;
  if (!t) return "";
  const b = t.buffer.active, out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  return out.join("\n");
}
window.__consoleText = consoleText;

function openConsole(dep, guest, opener) {
  const pane = document.getElementById("console"), box = document.getElementById("console-term");
  const note = document.getElementById("console-msg");
  closeConsole();
  consoleState.opener = opener || null;
  pane.hidden = false;
  document.getElementById("console-guest").textContent = guest;
  if (typeof Terminal !== "function" || typeof FitAddon !== "object") {
    note.textContent = "the terminal library is missing from this build (make gui-assets installs it)";
    return;
  }
  box.textContent = "";
  const term = new Terminal({
    cursorBlink: true, scrollback: 5000, fontSize: 13, convertEol: false,
    fontFamily: "ui-monospace, DejaVu Sans Mono, monospace",
    theme: { background: "#000000", foreground: "#d0d0d0" },
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  consoleState.term = term;
  consoleState.fit = fit;
  window.__term = term;
  note.textContent = "connecting…";
  const ws = new WebSocket(wsURL("/api/deployments/" + encodeURIComponent(dep) + "/guests/" + encodeURIComponent(guest) + "/console"));
  ws.binaryType = "arraybuffer";
  consoleState.ws = ws;
  const enc = new TextEncoder();
  const send = (s) => { if (ws.readyState === WebSocket.OPEN) ws.send(typeof s === "string" ? enc.encode(s) : s); };
  const sendSize = () => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
  };
  const refit = () => { if (!pane.hidden) { try { fit.fit(); } catch (e) { /* not laid out yet */ } } };
  term.onResize(sendSize);
  consoleState.observer = new ResizeObserver(refit);
  consoleState.observer.observe(box);
  refit();

  // Escape goes to the guest (vi needs it) and arms leaving: a Tab right
  // after it is left to the browser, which moves the focus on.
  let armed = false;
  term.attachCustomKeyEventHandler((e) => {
    if (e.type !== "keydown") return true;
    if (e.key === "Tab" && armed) { armed = false; return false; }
    armed = e.key === "Escape";
    return true;
  });
  term.onData((d) => send(d));
  term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  ws.onopen = () => {
    note.textContent = "connected to " + guest + ". Escape then Tab leaves the terminal.";
    refit();
    sendSize();
    term.focus();
  };
  ws.onmessage = (m) => term.write(typeof m.data === "string" ? m.data : new Uint8Array(m.data));
  ws.onclose = (e) => {
    note.textContent = "console closed" + (e.reason ? ": " + e.reason : " (this guest's console may not be available)");
  };
}

document.addEventListener("keydown", (e) => {
  const pane = document.getElementById("console");
  if (e.key === "Escape" && pane && !pane.hidden && !pane.contains(document.activeElement)) closeConsole();
});
