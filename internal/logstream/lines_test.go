package logstream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fileLines reads the log file itself, line by line, however long a line is.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		return nil
	}
	if data[len(data)-1] != '\n' {
		t.Fatalf("log does not end with a newline")
	}
	return strings.Split(string(data[:len(data)-1]), "\n")
}

// writeChunks writes total bytes of s repeated, with no newline, in writes
// of chunk bytes.
func writeChunks(t testing.TB, w io.Writer, s string, total, chunk int) {
	t.Helper()
	buf := []byte(strings.Repeat(s, chunk/len(s)+1))[:chunk]
	for n := 0; n < total; n += chunk {
		if _, err := w.Write(buf[:min(chunk, total-n)]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		write func(l *Log)
		want  []int // bytes of text of each line
	}{
		{"writer, 1 MiB without newline, small writes", func(l *Log) {
			w := l.Writer("[web] ")
			writeChunks(t, w, "x", mib, 4096)
			w.Close()
		}, repeat(MaxLine, 16)},
		{"writer, 1 MiB in one write, then a newline", func(l *Log) {
			w := l.Writer("[web] ")
			w.Write(bytes.Repeat([]byte("y"), mib+10))
			w.Write([]byte("\nshort\n"))
			w.Close()
		}, append(repeat(MaxLine, 16), 10, 5)},
		{"writer, exactly MaxLine then newline", func(l *Log) {
			w := l.Writer("[web] ")
			w.Write(bytes.Repeat([]byte("z"), MaxLine))
			w.Write([]byte("\r\n"))
			w.Close()
		}, []int{MaxLine}},
		{"printf, 200 KiB", func(l *Log) {
			l.Printf("%s", strings.Repeat("p", 200<<10))
		}, []int{MaxLine, MaxLine, MaxLine, 200<<10 - 3*MaxLine}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t)
			l, _ := h.Create("dep", time.Now())
			tc.write(l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := fileLines(t, l.Path())
			var got []int
			for _, line := range lines {
				msg := strings.TrimPrefix(message(line), "[web] ")
				got = append(got, len(msg))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("line lengths %v, want %v", got, tc.want)
			}
			// Followers get the very same lines.
			followed := collect(t, h, l.Path())
			if strings.Join(followed, "\n") != strings.Join(lines, "\n") {
				t.Fatalf("followers got %d lines, the file has %d", len(followed), len(lines))
			}
		})
	}
}

func repeat(n, times int) []int {
	out := make([]int, times)
	for i := range out {
		out[i] = n
	}
	return out
}

func TestSplitKeepsCharactersWhole(t *testing.T) {
	h := newHub(t)
	l, _ := h.Create("dep", time.Now())
	w := l.Writer("")
	// "x" then 3-byte characters: MaxLine falls inside a character.
	text := "x" + strings.Repeat("€", MaxLine)
	for i := 0; i < len(text); i += 1000 {
		w.Write([]byte(text[i:min(i+1000, len(text))]))
	}
	w.Close()
	l.Close()
	var joined strings.Builder
	for i, line := range fileLines(t, l.Path()) {
		msg := message(line)
		if len(msg) > MaxLine || !utf8.ValidString(msg) {
			t.Fatalf("line %d: %d bytes, valid UTF-8 %v", i, len(msg), utf8.ValidString(msg))
		}
		joined.WriteString(msg)
	}
	if joined.String() != text {
		t.Fatal("the pieces do not make the text")
	}
}

// TestWriterMemoryIsBounded: a script printing megabytes without a newline
// costs the daemon one line's worth of memory, not the output's.
func TestWriterMemoryIsBounded(t *testing.T) {
	h := newHub(t)
	l, _ := h.Create("dep", time.Now())
	defer l.Close()
	w := l.Writer("[web] ").(*prefixWriter)
	chunk := bytes.Repeat([]byte("m"), 32<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range (16 << 20) / len(chunk) {
		w.Write(chunk)
		if cap(w.pending) > MaxLine {
			t.Fatalf("the writer holds %d bytes of a pending line", cap(w.pending))
		}
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("writing 16 MiB without a newline allocated %d bytes", alloc)
	}
}

func TestCapDropsAndSaysHowMuch(t *testing.T) {
	h, err := NewHub(t.TempDir(), WithMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	l, _ := h.Create("dep", time.Now())
	l.Printf("start")
	w := l.Writer("[web] ")
	writeChunks(t, w, "c", 3<<20, 8192) // 48 lines of MaxLine
	w.Close()
	l.Printf("after the cap")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(l.Path())
	if fi.Size() > 1<<20+200 {
		t.Fatalf("capped log is %d bytes", fi.Size())
	}
	lines := fileLines(t, l.Path())
	last := message(lines[len(lines)-1])
	kept := len(lines) - 2     // "start" and the last line
	wantLines := 48 - kept + 1 // the script's lines past the cap, and "after the cap"
	var droppedBytes, droppedLines int
	if _, err := fmt.Sscanf(last, "log cap of 1048576 bytes reached: dropped %d bytes in %d lines",
		&droppedBytes, &droppedLines); err != nil {
		t.Fatalf("last line %q: %v", last, err)
	}
	if droppedLines != wantLines {
		t.Fatalf("said %d lines dropped, %d were", droppedLines, wantLines)
	}
	if least := (wantLines - 1) * (len(lines[1]) + 1); droppedBytes < least {
		t.Fatalf("said %d bytes dropped, at least %d were", droppedBytes, least)
	}
	for _, line := range lines[:len(lines)-1] {
		if strings.Contains(line, "after the cap") {
			t.Fatal("a line past the cap was written")
		}
	}
}

// TestFollowSplitsHugeOldLines: a log written before lines were split may
// hold a line of any length; a follower gets it in pieces of MaxMessage.
func TestFollowSplitsHugeOldLines(t *testing.T) {
	h := newHub(t)
	path := h.Dir() + "/old.log"
	huge := strings.Repeat("h", 1<<20)
	if err := os.WriteFile(path, []byte(huge+"\nnext\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	err := h.Follow(context.Background(), path, func(l string) error {
		sizes = append(sizes, len(l))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range sizes[:len(sizes)-1] {
		if n > MaxMessage {
			t.Fatalf("a follower got %d bytes in one line", n)
		}
		total += n
	}
	if total != len(huge) || sizes[len(sizes)-1] != 4 {
		t.Fatalf("pieces %v", sizes)
	}
}

// BenchmarkWriterNoNewline writes 64 MiB without a newline through a
// script's writer.
func BenchmarkWriterNoNewline(b *testing.B) {
	h, err := NewHub(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	const total = 64 << 20
	b.SetBytes(total)
	for range b.N {
		l, _ := h.Create("bench", time.Now())
		w := bufio.NewWriterSize(l.Writer("[web] "), 32<<10)
		writeChunks(b, w, "b", total, 32<<10)
		w.Flush()
		l.Close()
		os.Remove(l.Path())
	}
}
