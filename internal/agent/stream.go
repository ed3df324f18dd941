package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
)

// maxLine is the longest log line a stream carries; longer output is split,
// as the action log does, so no guest output grows either host's memory.
const maxLine = 64 << 10

// streamWriter writes the NDJSON lines of one answer, one at a time, each
// flushed at once.
type streamWriter struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *json.Encoder
	err error
}

func (s *streamWriter) send(l StreamLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if s.err = s.enc.Encode(l); s.err == nil {
		s.err = s.rc.Flush()
	}
}

func (s *streamWriter) line(text string) {
	for len(text) > maxLine {
		t := text[:maxLine]
		s.send(StreamLine{Line: &t})
		text = text[maxLine:]
	}
	s.send(StreamLine{Line: &text})
}

// stream answers 200 with the log lines run writes, keep-alive lines while
// it is silent, and its outcome as the last line.
func (s *server) stream(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, log actlog.Log) (StreamLine, error)) error {
	return s.streamTo(w, r, func(ctx context.Context, sw *streamWriter) (StreamLine, error) {
		return run(ctx, &streamLog{sw: sw})
	})
}

// streamTo is stream for a run that sends lines of its own (an exec's
// output) besides log lines.
func (s *server) streamTo(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, sw *streamWriter) (StreamLine, error)) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w)}
	sw.send(StreamLine{}) // headers out now: the main knows the call started
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.opts.KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sw.send(StreamLine{})
			}
		}
	}()
	last, err := run(r.Context(), sw)
	close(done)
	wg.Wait()
	if err != nil {
		s.opts.Logger.Warn("agent guest call failed", "path", r.URL.Path, "err", err)
		sw.send(StreamLine{Error: err.Error(), Code: codeOf(err)})
	} else {
		last.OK = true
		sw.send(last)
	}
	return nil
}

// streamLog is the actlog.Log of a driver behind the agent API: its lines
// go into the answer's stream.
type streamLog struct{ sw *streamWriter }

var _ actlog.Log = (*streamLog)(nil)

// Printf implements actlog.Log; the main stamps the time.
func (l *streamLog) Printf(format string, args ...any) {
	for _, line := range bytes.Split([]byte(fmt.Sprintf(format, args...)), []byte("\n")) {
		l.sw.line(string(line))
	}
}

// Writer implements actlog.Log.
func (l *streamLog) Writer(prefix string) io.WriteCloser {
	return &streamLineWriter{sw: l.sw, prefix: prefix}
}

type streamLineWriter struct {
	sw     *streamWriter
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *streamLineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.sw.line(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) > maxLine {
		w.sw.line(w.prefix + string(w.buf[:maxLine]))
		w.buf = w.buf[maxLine:]
	}
	return len(p), nil
}

func (w *streamLineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.sw.line(w.prefix + string(w.buf))
		w.buf = nil
	}
	return nil
}
