// Package actlog is the one interface through which the engine, the guest
// drivers and (behind the agent API) other hosts write an action's log. The
// log itself, its file and its followers live in logstream.
package actlog

import "io"

// Log receives the human-readable lines of an action's log.
type Log interface {
	// Printf writes one timestamped line.
	Printf(format string, args ...any)
	// Writer returns a writer whose lines go into the log, each prefixed with
	// prefix. Close flushes a last unterminated line.
	Writer(prefix string) io.WriteCloser
}
