// Package logstream writes the one log file each action has and lets any
// number of followers read it live: every line so far, then each new line as
// it is written, then the end. Followers are woken by an in-process broadcast
// (no polling) and read the file itself, so a late follower, or one after a
// restart, sees exactly what an early one saw.
package logstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TimeLayout starts every line of an action log.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// fileTimeLayout is the RFC 3339 UTC time in log file names; milliseconds keep
// two quick actions of one deployment apart.
const fileTimeLayout = "2006-01-02T15:04:05.000Z"

// MaxLine is the most bytes of text one log line carries: a longer
// line, from a guest's script or anywhere else, is split into lines of at
// most MaxLine bytes, so no output can make a line, and the memory holding
// it, grow without bound.
const MaxLine = 64 << 10

// MaxMessage is the most bytes of one line a follower gets: MaxLine of text
// plus the timestamp and a prefix. Longer lines (in a log written before
// lines were split) reach followers split at MaxMessage.
const MaxMessage = MaxLine + 4<<10

// DefaultMaxBytes caps one action's log (TESTBEDOS_LOG_MAX_BYTES changes it);
// past the cap lines are dropped and counted.
const DefaultMaxBytes = 256 << 20

// Hub creates action logs in one folder and knows which are still being
// written.
type Hub struct {
	dir      string
	now      func() time.Time
	maxBytes int64

	mu   sync.Mutex
	live map[string]*Log // by path
}

// Option changes a Hub made by NewHub.
type Option func(*Hub)

// WithMaxBytes caps each log at n bytes (n > 0): past the cap lines are
// dropped, and Close writes one line saying how much.
func WithMaxBytes(n int64) Option {
	return func(h *Hub) {
		if n > 0 {
			h.maxBytes = n
		}
	}
}

// NewHub returns a hub writing logs into dir (created if missing), each
// capped at DefaultMaxBytes unless an option says otherwise.
func NewHub(dir string, opts ...Option) (*Hub, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	h := &Hub{dir: dir, now: time.Now, maxBytes: DefaultMaxBytes, live: make(map[string]*Log)}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// Dir is the folder holding the logs.
func (h *Hub) Dir() string { return h.dir }

// Create starts the log of an action of deployment that began at start:
// <dir>/<RFC3339 UTC>-<deployment>.log.
func (h *Hub) Create(deployment string, start time.Time) (*Log, error) {
	t := start.UTC()
	for {
		path := filepath.Join(h.dir, t.Format(fileTimeLayout)+"-"+deployment+".log")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		if errors.Is(err, os.ErrExist) {
			t = t.Add(time.Millisecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create action log: %w", err)
		}
		l := &Log{hub: h, path: path, f: f, max: h.maxBytes, changed: make(chan struct{})}
		h.mu.Lock()
		h.live[path] = l
		h.mu.Unlock()
		return l, nil
	}
}

func (h *Hub) lookup(path string) *Log {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live[path]
}

// Live reports whether the log at path is still being written.
func (h *Hub) Live(path string) bool { return h.lookup(path) != nil }

// Log is one action's log being written. Its methods are safe for concurrent
// use; each line is written whole, by one write call.
type Log struct {
	hub  *Hub
	path string
	max  int64 // the cap on the file's size

	mu      sync.Mutex
	f       *os.File
	err     error         // first write error, reported by Close
	changed chan struct{} // closed and replaced on every write
	done    bool

	written      int64 // bytes in the file
	capped       bool  // the cap was reached: every further line is dropped
	droppedBytes int64
	droppedLines int64
}

// Path is the log file.
func (l *Log) Path() string { return l.path }

// Printf writes one timestamped line (several if the text has newlines or
// is longer than MaxLine).
func (l *Log) Printf(format string, args ...any) {
	w := l.newWriter("")
	for _, line := range bytes.Split(bytes.TrimRight([]byte(fmt.Sprintf(format, args...)), "\n"), []byte("\n")) {
		w.take(line, true)
	}
	w.batch.flush()
}

// Writer returns a writer whose complete lines go into the log with prefix;
// a line longer than MaxLine is written in pieces as it arrives, so the
// writer never holds more than MaxLine bytes. Close writes a last
// unterminated line.
func (l *Log) Writer(prefix string) io.WriteCloser { return l.newWriter(prefix) }

// commit writes formatted lines (each ending in a newline) with one write
// call, as far as the cap allows, and wakes the followers.
func (l *Log) commit(buf []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	if !l.capped && l.written+int64(len(buf)) > l.max {
		keep := bytes.LastIndexByte(buf[:l.max-l.written], '\n') + 1
		l.drop(buf[keep:])
		buf = buf[:keep]
		l.capped = true
	} else if l.capped {
		l.drop(buf)
		return
	}
	if len(buf) == 0 {
		return
	}
	l.write(buf)
}

func (l *Log) drop(buf []byte) {
	l.droppedBytes += int64(len(buf))
	l.droppedLines += int64(bytes.Count(buf, []byte("\n")))
}

// write appends to the file and wakes the followers; l.mu is held.
func (l *Log) write(buf []byte) {
	n, err := l.f.Write(buf)
	l.written += int64(n)
	if err != nil && l.err == nil {
		l.err = err
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// Close ends the log: followers read what is left and finish. Whatever
// outcome the followers should learn must be stored before Close.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return nil
	}
	if l.droppedLines > 0 {
		b := lineBatch{ts: l.hub.now().UTC().Format(TimeLayout)}
		b.add([]byte(fmt.Sprintf("log cap of %d bytes reached: dropped %d bytes in %d lines",
			l.max, l.droppedBytes, l.droppedLines)), nil)
		l.write(b.buf)
	}
	l.done = true
	err := errors.Join(l.err, l.f.Sync(), l.f.Close())
	close(l.changed)
	l.mu.Unlock()

	l.hub.mu.Lock()
	delete(l.hub.live, l.path)
	l.hub.mu.Unlock()
	return err
}

// snapshot returns the channel that the next write closes and whether the
// log has ended. Taken before reading, it makes wake-ups impossible to miss.
func (l *Log) snapshot() (<-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed, l.done
}
