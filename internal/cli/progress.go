package cli

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"golang.org/x/term"
)

// stageLine matches the stage lines of up, down and apply after their
// time: "==> up [3/6] network: 1 switch".
var stageLine = regexp.MustCompile(`^==> .+ \[\d+/\d+\] `)

// progress prints an action's log as it streams. On a terminal the stage
// lines are one progress line at the bottom, overwritten in place as the
// stages go by, with the other lines scrolling above it; elsewhere (a pipe,
// a file) every line is printed as it is.
type progress struct {
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
	tty := a.terminal
	if tty == nil {
		tty = isTerminal
	}
	return &progress{w: a.stdout, tty: tty(a.stdout)}
}

// clearLine returns the cursor to the start of the line and clears it.
const clearLine = "\r\x1b[K"

// line prints one log line (already through showLine).
func (p *progress) line(l string) {
	if !p.tty {
		fmt.Fprintln(p.w, l)
		return
	}
	l = sanitizeGuest(l)
	_, rest, _ := strings.Cut(l, " ")
	if stageLine.MatchString(rest) {
		p.current = l
		fmt.Fprint(p.w, clearLine+l)
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

// done ends the progress line, leaving the last stage on screen.
func (p *progress) done() {
	if p.tty && p.current != "" {
		fmt.Fprintln(p.w)
		p.current = ""
	}
}
