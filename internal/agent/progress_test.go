package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/guest/guesttest"
)

// TestProgressLines: a transfer logs its start, a line with percent and
// MB/s at most every progressEvery (not one per read), and its end.
func TestProgressLines(t *testing.T) {
	log := &guesttest.Log{}
	p := newProgress(log, "file disk.img to host c1", 100<<20)
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	p.start(0)
	for off := int64(1 << 20); off <= 100<<20; off += 1 << 20 {
		clock = clock.Add(100 * time.Millisecond) // 10 MiB/s, 100 steps
		p.moveTo(off, true)
	}
	p.done()
	lines := strings.Split(log.Text(), "\n")
	// 10 s of reads: a line every 2 s.
	if len(lines) < 5 || len(lines) > 8 {
		t.Fatalf("%d lines, want start, about 5 progress lines, end:\n%s", len(lines), log.Text())
	}
	if !strings.Contains(lines[0], "sending 100.0 MiB") || !strings.Contains(lines[2], "% (") || !strings.Contains(lines[2], "10 MB/s") {
		t.Errorf("lines:\n%s", log.Text())
	}
	if !strings.Contains(lines[len(lines)-1], "100.0 MiB there, verified by sha256") {
		t.Errorf("last line: %s", lines[len(lines)-1])
	}
	quiet := &guesttest.Log{}
	small := newProgress(quiet, "file s.sh", 100)
	small.start(0)
	small.done()
	if quiet.Text() != "" {
		t.Errorf("a small file's transfer logged:\n%s", quiet.Text())
	}
}
