package agent

import (
	"io"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
)

// progressEvery is how often a transfer's progress is logged.
const progressEvery = 2 * time.Second

// quietBelow: files smaller (scripts, keys, domain documents) go without
// a word in the log.
const quietBelow = 1 << 20

// progress writes one upload's progress into the action's log: its start,
// a line at most every progressEvery (percent, MiB and MB/s), a line when
// it broke and resumes, and its end. A nil log gets nothing.
type progress struct {
	log  actlog.Log
	what string
	size int64
	now  func() time.Time

	mu    sync.Mutex
	began time.Time
	last  time.Time
	at    int64 // the offset reached
	sent  int64 // bytes sent since began, every attempt
}

func newProgress(log actlog.Log, what string, size int64) *progress {
	if size < quietBelow {
		log = nil
	}
	return &progress{log: log, what: what, size: size, now: time.Now}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func (p *progress) start(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.began, p.last, p.at = p.now(), p.now(), offset
	if offset > 0 {
		printf(p.log, "    %s: %.1f of %.1f MiB are there from a broken upload: sending the rest", p.what, mib(offset), mib(p.size))
		return
	}
	printf(p.log, "    %s: sending %.1f MiB", p.what, mib(p.size))
}

// rate is the throughput so far in MB/s.
func (p *progress) rate() float64 {
	secs := p.now().Sub(p.began).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(p.sent) / secs / 1e6
}

func (p *progress) advance(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at += int64(n)
	p.sent += int64(n)
	if p.now().Sub(p.last) < progressEvery || p.size == 0 {
		return
	}
	p.last = p.now()
	printf(p.log, "    %s: %d%% (%.1f of %.1f MiB), %.0f MB/s", p.what, p.at*100/p.size, mib(p.at), mib(p.size), p.rate())
}

func (p *progress) resumed(offset int64, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	printf(p.log, "    %s: the transfer broke at %.1f MiB (%v); the host holds %.1f MiB: resuming from there", p.what, mib(p.at), cause, mib(offset))
	p.at = offset
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	printf(p.log, "    %s: %.1f MiB there, verified by sha256 (%.1f MiB sent in %.1f s, %.0f MB/s)", p.what, mib(p.size), mib(p.sent), p.now().Sub(p.began).Seconds(), p.rate())
}

// reader counts what is read from r into the progress.
func (p *progress) reader(r io.Reader, offset int64) io.Reader {
	p.mu.Lock()
	p.at = offset
	p.mu.Unlock()
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.p.advance(n)
	}
	return n, err
}
