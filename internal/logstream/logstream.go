// Package logstream writes the one log file each action has and lets any
// number of followers read it live: every line so far, then each new line as
// it is written, then the end. Followers are woken by an in-process broadcast
// (no polling) and read the file itself, so a late follower, or one after a
// restart, sees exactly what an early one saw.
package logstream

import (
	"bufio"
	"bytes"
	"context"
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

// Hub creates action logs in one folder and knows which are still being
// written.
type Hub struct {
	dir string
	now func() time.Time

	mu   sync.Mutex
	live map[string]*Log // by path
}

// NewHub returns a hub writing logs into dir (created if missing).
func NewHub(dir string) (*Hub, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	return &Hub{dir: dir, now: time.Now, live: make(map[string]*Log)}, nil
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
		l := &Log{hub: h, path: path, f: f, changed: make(chan struct{})}
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
// use; each line is written with one write call.
type Log struct {
	hub  *Hub
	path string

	mu      sync.Mutex
	f       *os.File
	err     error         // first write error, reported by Close
	changed chan struct{} // closed and replaced on every write
	done    bool
}

// Path is the log file.
func (l *Log) Path() string { return l.path }

// Printf writes one timestamped line (several if the text has newlines).
func (l *Log) Printf(format string, args ...any) {
	l.writeLines("", []byte(fmt.Sprintf(format, args...)))
}

// Writer returns a writer whose complete lines go into the log with prefix;
// Close writes a last unterminated line.
func (l *Log) Writer(prefix string) io.WriteCloser {
	return &prefixWriter{log: l, prefix: prefix}
}

func (l *Log) writeLines(prefix string, text []byte) {
	ts := l.hub.now().UTC().Format(TimeLayout)
	var buf bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimRight(text, "\n"), []byte("\n")) {
		buf.WriteString(ts)
		buf.WriteByte(' ')
		buf.WriteString(prefix)
		buf.Write(bytes.TrimRight(line, "\r"))
		buf.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	if _, err := l.f.Write(buf.Bytes()); err != nil && l.err == nil {
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

type prefixWriter struct {
	log     *Log
	prefix  string
	mu      sync.Mutex
	pending []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	if i := bytes.LastIndexByte(w.pending, '\n'); i >= 0 {
		w.log.writeLines(w.prefix, w.pending[:i+1])
		w.pending = append(w.pending[:0], w.pending[i+1:]...)
	}
	return len(p), nil
}

func (w *prefixWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.log.writeLines(w.prefix, w.pending)
		w.pending = nil
	}
	return nil
}

// Follow calls emit with every line of the log at path (without the
// newline), in order; while the log is being written it waits for new lines
// and returns once the log is closed and fully read. A log that is not live
// is read to its end. emit's error, or the context's, stops it.
func (h *Hub) Follow(ctx context.Context, path string, emit func(line string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var partial []byte
	live := h.lookup(path)
	for {
		var changed <-chan struct{}
		done := true
		if live != nil {
			changed, done = live.snapshot()
		}
		for {
			chunk, err := r.ReadSlice('\n')
			if err == nil {
				if len(partial) > 0 {
					chunk = append(partial, chunk...)
					partial = partial[:0]
				}
				if err := emit(string(chunk[:len(chunk)-1])); err != nil {
					return err
				}
				continue
			}
			partial = append(partial, chunk...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if !errors.Is(err, io.EOF) {
				return err
			}
			break
		}
		if done {
			if len(partial) > 0 {
				return emit(string(partial))
			}
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
