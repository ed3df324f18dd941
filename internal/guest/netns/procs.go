package netns

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// procScanner finds the processes inside network namespaces by reading
// /proc/*/ns/net. Tearing down many guests at once would read all of /proc
// once per guest; instead concurrent requests share scans: each request is
// answered by the first scan that starts after it was made.
type procScanner struct {
	mu      sync.Mutex
	running bool
	queue   []chan map[nsID][]int
}

// members returns the processes whose network namespace is ns.
func (s *procScanner) members(ctx context.Context, ns nsID) ([]int, error) {
	ch := make(chan map[nsID][]int, 1)
	s.mu.Lock()
	s.queue = append(s.queue, ch)
	if !s.running {
		s.running = true
		go s.loop()
	}
	s.mu.Unlock()
	select {
	case m := <-ch:
		return m[ns], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *procScanner) loop() {
	for {
		s.mu.Lock()
		waiting := s.queue
		s.queue = nil
		if len(waiting) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		m := scanProcs()
		for _, ch := range waiting {
			ch <- m
		}
	}
}

// parseNetLink reads the inode out of a link like "net:[4026531840]".
func parseNetLink(b []byte) (nsID, bool) {
	s, ok := strings.CutPrefix(string(b), "net:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(s, 10, 64)
	return nsID(ino), err == nil
}

// scanProcs maps namespaces to the processes in them (by the namespace of
// each process's main thread), leaving out this process.
func scanProcs() map[nsID][]int {
	m := make(map[nsID][]int)
	d, err := os.Open("/proc")
	if err != nil {
		return m
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	self := os.Getpid()
	buf := make([]byte, 64)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		// readlink is about twice as fast as stat here. Gone, or a zombie
		// (whose namespaces are released): skip.
		n, err := unix.Readlink("/proc/"+name+"/ns/net", buf)
		if err != nil {
			continue
		}
		ino, ok := parseNetLink(buf[:n])
		if !ok {
			continue
		}
		m[ino] = append(m[ino], pid)
	}
	return m
}

// killMembers kills every process inside ns, looking again until none is
// left (they may fork meanwhile) or a few rounds have passed. It returns
// how many processes it signalled.
func (s *procScanner) killMembers(ctx context.Context, ns nsID) (int, error) {
	killed := make(map[int]bool)
	for round := range 20 {
		pids, err := s.members(ctx, ns)
		if err != nil {
			return len(killed), err
		}
		if len(pids) == 0 {
			return len(killed), nil
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
			killed[pid] = true
		}
		// Give the kernel a moment to finish them before looking again.
		select {
		case <-time.After(time.Duration(round+1) * 5 * time.Millisecond):
		case <-ctx.Done():
			return len(killed), ctx.Err()
		}
	}
	return len(killed), nil
}
