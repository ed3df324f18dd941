// Package guesttest holds what tests of drivers and the engine share: a
// actlog.Log that keeps every line in memory.
package guesttest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
)

// Log is a actlog.Log keeping every line; Writer splits its input into lines
// as the action log does. With T set, lines are echoed to the test's log in
// verbose runs.
type Log struct {
	T testing.TB

	mu    sync.Mutex
	lines []string
}

var _ actlog.Log = (*Log)(nil)

var _ actlog.Log = (*Log)(nil)

// Printf records one line (several when the text has newlines, as the
// action log would write them).
func (l *Log) Printf(format string, args ...any) { l.add(fmt.Sprintf(format, args...)) }

func (l *Log) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	if l.T != nil && testing.Verbose() {
		l.T.Log(line)
	}
}

// Writer returns a writer whose complete lines are recorded with prefix;
// Close records a last unterminated line.
func (l *Log) Writer(prefix string) io.WriteCloser { return &lineWriter{log: l, prefix: prefix} }

// Text is every line so far, joined by newlines.
func (l *Log) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

type lineWriter struct {
	log    *Log
	prefix string
	mu     sync.Mutex
	buf    bytes.Buffer
}

var _ io.WriteCloser = (*lineWriter)(nil)

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // unterminated: keep for later
			return len(p), nil
		}
		w.log.add(w.prefix + strings.TrimSuffix(line, "\n"))
	}
}

func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.log.add(w.prefix + w.buf.String())
		w.buf.Reset()
	}
	return nil
}
