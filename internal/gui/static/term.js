// TestbedOS GUI: a small terminal of our own for the console pane. It is
// not a full emulator: it keeps lines and a cursor, interprets what shells
// and serial consoles send most (CR, LF, backspace, tab, cursor left/right,
// erase in line, clear screen) and drops the rest of the escape sequences
// (colours, modes, titles). Keys go out as the bytes a terminal sends.
"use strict";

const TERM_MAX_LINES = 2000;

class Term {
  constructor(pre) {
    this.pre = pre;
    this.lines = [""];
    this.row = 0;
    this.col = 0;
    this.esc = ""; // an escape sequence not yet complete
    this.dirty = false;
  }

  reset() { this.lines = [""]; this.row = 0; this.col = 0; this.esc = ""; this.paint(); }

  // write feeds output text into the screen.
  write(text) {
    for (const ch of text) {
      if (this.esc) { this.escape(ch); continue; }
      switch (ch) {
        case "\x1b": this.esc = ch; break;
        case "\r": this.col = 0; break;
        case "\n": this.newline(); break;
        case "\b": this.col = Math.max(0, this.col - 1); break;
        case "\t": this.col = Math.min(this.col + 8 - (this.col % 8), 500); break;
        case "\x07": break; // bell
        default:
          if (ch < " " || ch === "\x7f") break;
          this.put(ch);
      }
    }
    this.schedule();
  }

  put(ch) {
    let line = this.lines[this.row];
    if (line.length < this.col) line = line.padEnd(this.col);
    this.lines[this.row] = line.slice(0, this.col) + ch + line.slice(this.col + 1);
    this.col++;
  }

  newline() {
    this.row++;
    this.col = 0;
    if (this.row >= this.lines.length) this.lines.push("");
    if (this.lines.length > TERM_MAX_LINES) {
      const drop = this.lines.length - TERM_MAX_LINES;
      this.lines.splice(0, drop);
      this.row -= drop;
    }
  }

  // escape collects an escape sequence and acts on the few it knows.
  escape(ch) {
    this.esc += ch;
    const s = this.esc;
    if (s.length === 2) {
      if (ch === "[" || ch === "]" || ch === "(" || ch === ")") return; // CSI, OSC, charsets
      this.esc = ""; // a two-byte sequence (ESC =, ESC >, ESC M …)
      return;
    }
    if (s[1] === "]") { // OSC … BEL or ESC \
      if (ch === "\x07" || s.endsWith("\x1b\\") || s.length > 512) this.esc = "";
      return;
    }
    if (s[1] === "(" || s[1] === ")") { this.esc = ""; return; }
    // CSI: parameters, then a final byte in @..~
    if (ch >= "@" && ch <= "~") {
      this.esc = "";
      this.csi(s.slice(2, -1), ch);
    } else if (s.length > 64) {
      this.esc = "";
    }
  }

  csi(params, final) {
    const ps = params.replace(/^[?>=]/, "").split(";").map((p) => parseInt(p, 10));
    const n = Number.isFinite(ps[0]) && ps[0] > 0 ? ps[0] : 1;
    const line = this.lines[this.row];
    switch (final) {
      case "C": this.col += n; break;
      case "D": this.col = Math.max(0, this.col - n); break;
      case "G": this.col = n - 1; break;
      case "A": this.row = Math.max(0, this.row - n); break;
      case "B": for (let i = 0; i < n && this.row < this.lines.length - 1; i++) this.row++; break;
      case "K": {
        const mode = ps[0] || 0;
        if (mode === 0) this.lines[this.row] = line.slice(0, this.col);
        else if (mode === 1) this.lines[this.row] = " ".repeat(this.col) + line.slice(this.col);
        else this.lines[this.row] = "";
        break;
      }
      case "P": // delete characters
        this.lines[this.row] = line.slice(0, this.col) + line.slice(this.col + n);
        break;
      case "@": // insert blanks
        this.lines[this.row] = line.slice(0, this.col) + " ".repeat(n) + line.slice(this.col);
        break;
      case "J":
        if ((ps[0] || 0) >= 2) { this.lines = [""]; this.row = 0; this.col = 0; }
        else if ((ps[0] || 0) === 0) { this.lines.length = this.row + 1; this.lines[this.row] = line.slice(0, this.col); }
        break;
      case "H": case "f":
        // Absolute moves are kept only for the home position, which
        // clear-screen sequences use.
        if (!params || params === "1;1") { this.row = Math.max(0, this.lines.length - 1); this.col = 0; }
        break;
      default: // m (colours), h/l (modes), r, s, u …: dropped
    }
  }

  schedule() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => { this.dirty = false; this.paint(); });
  }

  // paint draws the lines with the cursor as a highlighted cell.
  paint() {
    const pre = this.pre;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const cur = this.lines[this.row].padEnd(this.col + 1);
    const before = this.lines.slice(0, this.row).join("\n") + (this.row > 0 ? "\n" : "");
    const after = this.lines.slice(this.row + 1).join("\n");
    pre.textContent = "";
    const cursor = document.createElement("span");
    cursor.className = "cursor";
    cursor.textContent = cur[this.col];
    pre.append(before + cur.slice(0, this.col), cursor, cur.slice(this.col + 1).replace(/ +$/, "") + (after ? "\n" + after : ""));
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }

  // text is what the screen shows, for tests and copying.
  text() { return this.lines.join("\n"); }
}

// keyBytes is what a terminal sends for a key event, or "" for none.
function keyBytes(e) {
  const keys = {
    Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", Delete: "\x1b[3~",
    ArrowUp: "\x1b[A", ArrowDown: "\x1b[B", ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D",
    Home: "\x1b[H", End: "\x1b[F", PageUp: "\x1b[5~", PageDown: "\x1b[6~",
  };
  if (keys[e.key]) return keys[e.key];
  if (e.ctrlKey && !e.altKey && e.key.length === 1) {
    const c = e.key.toUpperCase().charCodeAt(0);
    if (c >= 64 && c <= 95) return String.fromCharCode(c - 64); // Ctrl-@ … Ctrl-_
    return "";
  }
  if (e.key.length === 1 && !e.metaKey) return (e.altKey ? "\x1b" : "") + e.key;
  return "";
}

// termSize is how many characters fit in the pane.
function termSize(pre) {
  const probe = document.createElement("span");
  probe.textContent = "MMMMMMMMMM";
  probe.style.visibility = "hidden";
  pre.appendChild(probe);
  const w = probe.getBoundingClientRect().width / 10 || 8;
  const h = probe.getBoundingClientRect().height || 16;
  probe.remove();
  const cs = getComputedStyle(pre);
  const iw = pre.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const ih = pre.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
  return { cols: Math.max(20, Math.floor(iw / w)), rows: Math.max(5, Math.floor(ih / h)) };
}
