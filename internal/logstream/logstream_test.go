package logstream

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func newHub(t *testing.T) *Hub {
	t.Helper()
	h, err := NewHub(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func collect(t *testing.T, h *Hub, path string) []string {
	t.Helper()
	var lines []string
	if err := h.Follow(context.Background(), path, func(l string) error {
		lines = append(lines, l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return lines
}

// message drops the timestamp that starts every line.
func message(line string) string {
	_, msg, _ := strings.Cut(line, " ")
	return msg
}

func TestLateFollowerGetsEverything(t *testing.T) {
	h := newHub(t)
	l, err := h.Create("dep", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.Printf("one")
	l.Printf("two\nthree")
	w := l.Writer("[web] ")
	fmt.Fprint(w, "partial ")
	fmt.Fprint(w, "line\nlast without newline")
	w.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := collect(t, h, l.Path())
	want := []string{"one", "two", "three", "[web] partial line", "[web] last without newline"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %q, want %q", len(got), got, want)
	}
	for i := range want {
		if message(got[i]) != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i], want[i])
		}
		if _, err := time.Parse(TimeLayout, strings.Fields(got[i])[0]); err != nil {
			t.Errorf("line %d has no timestamp: %v", i, err)
		}
	}
	if h.Live(l.Path()) {
		t.Fatal("closed log still live")
	}
}

func TestLiveFollowersSeeLinesInOrderAndFinish(t *testing.T) {
	h := newHub(t)
	l, err := h.Create("dep", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.Printf("before")
	const followers, lines = 20, 200
	results := make([][]string, followers)
	var wg sync.WaitGroup
	for i := range followers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Follow(context.Background(), l.Path(), func(s string) error {
				results[i] = append(results[i], message(s))
				return nil
			})
		}()
	}
	for i := range lines {
		l.Printf("line %d", i)
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	l.Close()
	wg.Wait()
	for i, r := range results {
		if len(r) != lines+1 || r[0] != "before" || r[lines] != fmt.Sprintf("line %d", lines-1) {
			t.Fatalf("follower %d got %d lines (first %q)", i, len(r), r[:min(len(r), 3)])
		}
		for j := 1; j <= lines; j++ {
			if r[j] != fmt.Sprintf("line %d", j-1) {
				t.Fatalf("follower %d line %d = %q", i, j, r[j])
			}
		}
	}
}

func TestFollowerWakesOnNewLine(t *testing.T) {
	h := newHub(t)
	l, _ := h.Create("dep", time.Now())
	defer l.Close()
	got := make(chan string, 1)
	go h.Follow(context.Background(), l.Path(), func(s string) error {
		got <- message(s)
		return nil
	})
	// The follower is blocked waiting; a write must wake it (no polling
	// interval to wait out). The generous bound only guards a hang.
	time.Sleep(20 * time.Millisecond)
	l.Printf("hello")
	select {
	case s := <-got:
		if s != "hello" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follower never woke")
	}
}

func TestFollowStopsOnContext(t *testing.T) {
	h := newHub(t)
	l, _ := h.Create("dep", time.Now())
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- h.Follow(ctx, l.Path(), func(string) error { return nil }) }()
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("Follow = %v, want context.Canceled", err)
	}
}

func TestSameMillisecondGetsOwnFile(t *testing.T) {
	h := newHub(t)
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	a, err := h.Create("dep", at)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Create("dep", at)
	if err != nil {
		t.Fatal(err)
	}
	if a.Path() == b.Path() {
		t.Fatal("two logs share a file")
	}
	if !strings.HasSuffix(a.Path(), "2026-11-25T10:00:00.000Z-dep.log") {
		t.Fatalf("file name %s", a.Path())
	}
	a.Close()
	b.Close()
}
