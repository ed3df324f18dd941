package libvirt

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

// TestSerialBuffer: the console's output buffer never blocks its writer,
// keeps at most its backlog, and gives EOF once closed and drained.
func TestSerialBuffer(t *testing.T) {
	b := newSerialBuffer(8)
	got := make(chan string, 1)
	go func() {
		p := make([]byte, 16)
		n, _ := b.Read(p) // waits for the first write
		got <- string(p[:n])
	}()
	time.Sleep(20 * time.Millisecond)
	if n, err := b.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	select {
	case s := <-got:
		if s != "abc" {
			t.Errorf("read %q, want abc", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting read did not get the write")
	}
	// Over the backlog: the write reports all of it, the rest is dropped.
	if n, err := b.Write([]byte("0123456789")); n != 10 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	b.close()
	rest, err := io.ReadAll(b)
	if string(rest) != "01234567" || err != nil {
		t.Errorf("after close: %q, %v; want the 8 bytes kept, then EOF", rest, err)
	}
	if n, err := b.Write([]byte("x")); n != 1 || err != nil {
		t.Errorf("write after close = %d, %v", n, err)
	}
	if !errors.Is(ErrNotRunning, api.ErrConflict) {
		t.Error("ErrNotRunning is not a conflict (409)")
	}
}
