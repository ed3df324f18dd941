package cli

import (
	"fmt"
	"io"
)

// Text that comes from guests (log lines, exec output, the errors of
// setup scripts) reaches the operator's terminal. A guest must not be able to
// drive that terminal: retitle it, write to the clipboard (OSC 52), hide or
// rewrite lines, send device control strings, or make it answer queries as
// if the operator typed. On a terminal the CLI therefore shows every control
// character and escape sequence as visible text (ESC as "^[", BEL as "^G",
// a C1 control such as U+009B as "<U+009B>"), keeping only newline, tab and
// SGR colour sequences (ESC [ digits ; m). Anything that is not a terminal (a
// pipe, a file) gets the bytes unchanged. `kvm-compose console` is an
// interactive terminal session and stays raw on purpose.

// maxSGR bounds an SGR sequence held back while its end is awaited.
const maxSGR = 64

// guestFilter neutralises control sequences in a stream of bytes. Its state
// survives between calls, so a sequence split across writes is still seen.
type guestFilter struct {
	held []byte // an ESC [ … not yet known to be SGR, or a lone CR or 0xC2
}

// append filters p onto dst.
func (f *guestFilter) append(dst, p []byte) []byte {
	for _, b := range p {
		dst = f.byte(dst, b)
	}
	return dst
}

func (f *guestFilter) byte(dst []byte, b byte) []byte {
	if len(f.held) > 0 {
		switch h := f.held[0]; {
		case h == '\r':
			f.held = f.held[:0]
			if b == '\n' { // CR LF is a line end
				return append(dst, '\n')
			}
			dst = append(dst, "^M"...)
		case h == 0xC2:
			f.held = f.held[:0]
			if b >= 0x80 && b <= 0x9F { // a C1 control in UTF-8
				return fmt.Appendf(dst, "<U+%04X>", b)
			}
			dst = append(dst, 0xC2)
		case h == 0x1B && len(f.held) == 1:
			if b == '[' {
				f.held = append(f.held, b)
				return dst
			}
			f.held = f.held[:0]
			dst = append(dst, "^["...)
		default: // ESC [ …
			switch {
			case b == 'm':
				dst = append(append(dst, f.held...), b)
				f.held = f.held[:0]
				return dst
			case (b >= '0' && b <= '9' || b == ';' || b == ':') && len(f.held) < maxSGR:
				f.held = append(f.held, b)
				return dst
			}
			dst = append(append(dst, "^["...), f.held[1:]...)
			f.held = f.held[:0]
		}
	}
	switch {
	case b == '\n', b == '\t':
		return append(dst, b)
	case b == '\r', b == 0xC2, b == 0x1B:
		f.held = append(f.held, b)
		return dst
	case b < 0x20:
		return append(dst, '^', b+'@')
	case b == 0x7F:
		return append(dst, "^?"...)
	}
	return append(dst, b)
}

// flush ends the stream: whatever is held back is shown as text.
func (f *guestFilter) flush(dst []byte) []byte {
	if len(f.held) == 0 {
		return dst
	}
	switch f.held[0] {
	case '\r':
		dst = append(dst, "^M"...)
	case 0xC2:
		dst = append(dst, 0xC2)
	default:
		dst = append(append(dst, "^["...), f.held[1:]...)
	}
	f.held = f.held[:0]
	return dst
}

// sanitizeGuest returns s with its control sequences made visible.
func sanitizeGuest(s string) string {
	var f guestFilter
	return string(f.flush(f.append(make([]byte, 0, len(s)), []byte(s))))
}

// guestWriter writes filtered text to w; Close writes what is held back.
type guestWriter struct {
	w   io.Writer
	f   guestFilter
	buf []byte
}

func (g *guestWriter) Write(p []byte) (int, error) {
	g.buf = g.f.append(g.buf[:0], p)
	if _, err := g.w.Write(g.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (g *guestWriter) Close() error {
	g.buf = g.f.flush(g.buf[:0])
	_, err := g.w.Write(g.buf)
	return err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// isTTY reports whether w is a terminal, as the app's tests decide.
func (a *app) isTTY(w io.Writer) bool {
	if a.terminal != nil {
		return a.terminal(w)
	}
	return isTerminal(w)
}

// guestOutput returns the writer for guest text bound for w: w itself
// unless w is a terminal. The caller closes it at the end of the text.
func (a *app) guestOutput(w io.Writer) io.WriteCloser {
	if !a.isTTY(w) {
		return nopCloser{w}
	}
	return &guestWriter{w: w}
}

// guestText is s as it may be shown on w (unchanged unless w is a
// terminal).
func (a *app) guestText(w io.Writer, s string) string {
	if !a.isTTY(w) {
		return s
	}
	return sanitizeGuest(s)
}
