package cli

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/term"
)

// stageLine matches the stage lines of up, down and apply after their
// time: "==> up [3/6] network: 1 switch", with the stage's number and the
// count of stages.
var stageLine = regexp.MustCompile(`^==> .+ \[(\d+)/(\d+)\] `)

// progress prints an action's log as it streams. On a terminal the stage
// lines are one progress line at the bottom, overwritten in place as the
// stages go by, with the other lines scrolling above it; elsewhere (a pipe,
// a file) every line is printed as it is.
//
// On a terminal the lines keep their order: the last stage ("[6/6] end")
// and the other "==> " lines (the outcome, a revert) stay where they come,
// so "==> up succeeded" is printed under "[6/6] end", never above it.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	current string // the progress line shown, on a terminal
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) newProgress() *progress {
	return &progress{w: a.stdout, tty: a.isTerminal(a.stdout)}
}

// isTerminal reports whether w is a terminal, as a.terminal says when set.
func (a *app) isTerminal(w io.Writer) bool {
	if a.terminal != nil {
		return a.terminal(w)
	}
	return isTerminal(w)
}

// clearLine returns the cursor to the start of the line and clears it.
const clearLine = "\r\x1b[K"

// line prints one log line (already through showLine).
func (p *progress) line(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintln(p.w, l)
		return
	}
	l = sanitizeGuest(l)
	_, rest, _ := strings.Cut(l, " ")
	if m := stageLine.FindStringSubmatch(rest); m != nil {
		if m[1] == m[2] {
			// The last stage: nothing overwrites it.
			fmt.Fprintln(p.w, clearLine+l)
			p.current = ""
			return
		}
		p.current = l
		fmt.Fprint(p.w, clearLine+l)
		return
	}
	if strings.HasPrefix(rest, "==> ") {
		// A step of the action itself: it goes under the stage it
		// followed.
		p.endLine()
		fmt.Fprintln(p.w, l)
		return
	}
	if p.current != "" {
		fmt.Fprint(p.w, clearLine)
	}
	fmt.Fprintln(p.w, l)
	if p.current != "" {
		fmt.Fprint(p.w, p.current)
	}
}

// say prints a message of the CLI's own on w (stderr) on a line of its
// own: the progress line is cleared first and drawn again under it.
func (p *progress) say(w io.Writer, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	shown := p.tty && p.current != ""
	if shown {
		fmt.Fprint(p.w, clearLine)
	}
	fmt.Fprintf(w, format, args...)
	if shown {
		fmt.Fprint(p.w, p.current)
	}
}

// done ends the progress line, leaving the last stage on screen.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLine()
}

// endLine leaves the progress line on screen and starts a new line.
func (p *progress) endLine() {
	if p.tty && p.current != "" {
		fmt.Fprintln(p.w)
		p.current = ""
	}
}
