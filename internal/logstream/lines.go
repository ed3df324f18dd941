package logstream

import (
	"bytes"
	"sync"
	"unicode/utf8"
)

// batchSize is how many bytes of formatted lines a writer gathers before it
// writes them: one write call for many short lines, bounded memory for many
// long ones.
const batchSize = 256 << 10

// lineBatch formats lines (timestamp, prefix, text, newline) for one write.
type lineBatch struct {
	log    *Log
	ts     string
	prefix string
	buf    []byte
}

// add appends the line made of a and b, writing the batch once it is full.
func (b *lineBatch) add(a, c []byte) {
	b.buf = append(b.buf, b.ts...)
	b.buf = append(b.buf, ' ')
	b.buf = append(b.buf, b.prefix...)
	b.buf = append(b.buf, a...)
	b.buf = append(b.buf, c...)
	b.buf = append(b.buf, '\n')
	if len(b.buf) >= batchSize {
		b.flush()
	}
}

func (b *lineBatch) flush() {
	if len(b.buf) > 0 && b.log != nil {
		b.log.commit(b.buf)
	}
	b.buf = b.buf[:0]
}

// prefixWriter turns a byte stream into log lines. It holds at most the
// MaxLine bytes of the line not yet complete, and looks at every byte once.
type prefixWriter struct {
	mu      sync.Mutex
	pending []byte // start of the unterminated line, shorter than MaxLine
	batch   lineBatch
}

func (l *Log) newWriter(prefix string) *prefixWriter {
	return &prefixWriter{batch: lineBatch{
		log: l, prefix: prefix, ts: l.hub.now().UTC().Format(TimeLayout),
	}}
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	w.batch.ts = w.batch.log.hub.now().UTC().Format(TimeLayout)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.take(p, false)
			break
		}
		w.take(p[:i], true)
		p = p[i+1:]
	}
	w.batch.flush()
	return n, nil
}

// take adds seg, which holds no newline, to the pending line; end says the
// line ends after seg. Whatever makes the line longer than MaxLine goes out
// as lines of at most MaxLine bytes, cut where a UTF-8 character starts.
func (w *prefixWriter) take(seg []byte, end bool) {
	if end {
		seg = bytes.TrimRight(seg, "\r")
		if len(seg) == 0 {
			w.pending = bytes.TrimRight(w.pending, "\r")
		}
	}
	for len(w.pending)+len(seg) > MaxLine {
		c := runeCut(w.pending, seg, MaxLine)
		if c <= len(w.pending) {
			w.batch.add(w.pending[:c], nil)
			w.pending = append(w.pending[:0], w.pending[c:]...)
			continue
		}
		k := c - len(w.pending)
		w.batch.add(w.pending, seg[:k])
		w.pending = w.pending[:0]
		seg = seg[k:]
	}
	if end {
		w.batch.add(w.pending, seg)
		w.pending = w.pending[:0]
		return
	}
	if n := len(w.pending) + len(seg); n > cap(w.pending) {
		// Grow as append would, but never past MaxLine.
		grown := make([]byte, len(w.pending), min(MaxLine, max(n, 2*cap(w.pending))))
		copy(grown, w.pending)
		w.pending = grown
	}
	w.pending = append(w.pending, seg...)
}

// runeCut returns where to cut the text a+b, longer than max, so that the
// first piece has at most max bytes and, unless the text is no UTF-8, ends
// with a whole character.
func runeCut(a, b []byte, max int) int {
	at := func(i int) byte {
		if i < len(a) {
			return a[i]
		}
		return b[i-len(a)]
	}
	for i := max; i > max-utf8.UTFMax; i-- {
		if utf8.RuneStart(at(i)) {
			return i
		}
	}
	return max
}

func (w *prefixWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.batch.ts = w.batch.log.hub.now().UTC().Format(TimeLayout)
		w.take(nil, true)
		w.batch.flush()
	}
	w.pending = nil
	return nil
}
