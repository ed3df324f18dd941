package logstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
)

// Follow calls emit with every line of the log at path (without the
// newline), in order; while the log is being written it waits for new lines
// and returns once the log is closed and fully read. A log that is not live
// is read to its end. emit's error, or the context's, stops it. A line
// longer than MaxMessage (only a log written before lines were split has
// one) is emitted in pieces, so a follower holds at most one line.
func (h *Hub) Follow(ctx context.Context, path string, emit func(line string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var partial []byte // the line read so far, while it has no newline
	live := h.lookup(path)
	for {
		var changed <-chan struct{}
		done := true
		if live != nil {
			changed, done = live.snapshot()
		}
		for {
			chunk, err := r.ReadSlice('\n')
			if err == nil && len(partial) == 0 {
				if err := emit(string(chunk[:len(chunk)-1])); err != nil {
					return err
				}
				continue
			}
			partial = append(partial, chunk...)
			if err == nil {
				partial = partial[:len(partial)-1]
			}
			for len(partial) > MaxMessage {
				c := runeCut(partial, nil, MaxMessage)
				if err := emit(string(partial[:c])); err != nil {
					return err
				}
				partial = append(partial[:0], partial[c:]...)
			}
			if err == nil {
				if err := emit(string(partial)); err != nil {
					return err
				}
				partial = partial[:0]
				continue
			}
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
