package agent

import (
	"io"
	"os"
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

// moveTo records that the upload reached offset off (negative: unknown),
// and with report logs it, at most every progressEvery.
func (p *progress) moveTo(off int64, report bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if off < 0 {
		return
	}
	if off > p.at {
		p.sent += off - p.at
	}
	p.at = off
	if !report || p.now().Sub(p.last) < progressEvery || p.size == 0 {
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

// follow logs the progress of file, sent from offset on: its offset is
// read every progressEvery. (A reader wrapped around the file to count
// would keep the transport from sending it with sendfile.) stop ends it.
func (p *progress) follow(file *os.File, offset int64) (stop func()) {
	p.mu.Lock()
	p.at = offset
	p.mu.Unlock()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(progressEvery / 4)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				p.moveTo(fileOffset(file), true)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		p.moveTo(fileOffset(file), false)
	}
}

// fileOffset is where file's next read starts; -1 once it is closed.
func fileOffset(file *os.File) int64 {
	off, err := file.Seek(0, io.SeekCurrent)
	if err != nil {
		return -1
	}
	return off
}
