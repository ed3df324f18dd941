package wsterm

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// echoTerm is a terminal that shows what is typed, upper-cased, and
// records its resizes; closing its input ends the session.
type echoTerm struct {
	mu      sync.Mutex
	resizes [][2]uint16
	out     *io.PipeWriter
	in      *io.PipeReader
}

func newEchoTerm() *echoTerm {
	r, w := io.Pipe()
	return &echoTerm{out: w, in: r}
}

func (e *echoTerm) Write(p []byte) (int, error) {
	if string(p) == "exit" {
		return len(p), e.out.Close()
	}
	return e.out.Write(bytes.ToUpper(p))
}

func (e *echoTerm) Read(p []byte) (int, error) { return e.in.Read(p) }

func (e *echoTerm) Resize(cols, rows uint16) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resizes = append(e.resizes, [2]uint16{cols, rows})
	return nil
}

func (e *echoTerm) sizes() [][2]uint16 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][2]uint16(nil), e.resizes...)
}

// serve is a websocket server whose every connection is term, served with
// Input and CopyOut as the console routes do.
func serve(t *testing.T, term *echoTerm) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := r.Context()
		go func() {
			if CopyOut(ctx, conn, term) {
				conn.Close(websocket.StatusNormalClosure, "session ended")
			}
		}()
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil || Input(term, typ, data) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, url string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(ctx, conn)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// readN reads exactly n bytes of what the terminal shows.
func readN(t *testing.T, c *Client, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(buf)
}

// Keys typed at the client reach the terminal, what it shows comes back
// (also in reads smaller than a message), resizes reach it as resizes, and
// the session's end is io.EOF.
func TestKeysResizeAndEnd(t *testing.T) {
	term := newEchoTerm()
	c := dial(t, serve(t, term))

	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 2) + readN(t, c, 3); got != "HELLO" {
		t.Errorf("shown %q, want HELLO", got)
	}
	if err := c.Resize(120, 40); err != nil {
		t.Fatal(err)
	}
	// A round trip after the resize: the server handles messages in order.
	c.Write([]byte("x"))
	if got := readN(t, c, 1); got != "X" {
		t.Errorf("shown %q, want X", got)
	}
	if got := term.sizes(); len(got) != 1 || got[0] != [2]uint16{120, 40} {
		t.Errorf("resizes = %v, want [[120 40]]", got)
	}

	c.Write([]byte("exit"))
	if n, err := c.Read(make([]byte, 8)); err != io.EOF {
		t.Errorf("after the session ended: %d, %v, want io.EOF", n, err)
	}
}

// Text that is not a well-formed resize is typed as keys, and a resize to
// zero columns or rows is ignored.
func TestInputTextIsKeysUnlessAResize(t *testing.T) {
	term := newEchoTerm()
	shown := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(term)
		shown <- string(b)
	}()
	for _, m := range []struct {
		typ  websocket.MessageType
		data string
	}{
		{websocket.MessageText, `{"type":"resize","cols":0,"rows":24}`},
		{websocket.MessageText, `{"type":"paste","cols":80,"rows":24}`},
		{websocket.MessageText, `{not json`},
		{websocket.MessageText, `ls`},
		{websocket.MessageBinary, `{"type":"resize","cols":80,"rows":24}`},
		{websocket.MessageText, `{"type":"resize","cols":80,"rows":24}`},
	} {
		if err := Input(term, m.typ, []byte(m.data)); err != nil {
			t.Fatalf("Input(%q): %v", m.data, err)
		}
	}
	term.Write([]byte("exit"))
	want := strings.ToUpper(`{"type":"paste","cols":80,"rows":24}{not jsonls{"type":"resize","cols":80,"rows":24}`)
	if got := <-shown; got != want {
		t.Errorf("typed %q, want %q", got, want)
	}
	if got := term.sizes(); len(got) != 1 || got[0] != [2]uint16{80, 24} {
		t.Errorf("resizes = %v, want only [[80 24]] (the text one)", got)
	}
}
