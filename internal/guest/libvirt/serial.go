package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// ErrNotRunning: the guest's domain is defined but not running.
var ErrNotRunning = api.Categorized(api.ErrConflict, "the domain is not running")

// serialBacklog caps what the console printed and no one read yet; more
// is dropped (a client that does not read loses output, not the session).
const serialBacklog = 4 << 20

// serialCloseWait bounds how long Close waits for libvirtd to end the
// stream before it drops the connection.
const serialCloseWait = 2 * time.Second

// Console implements guest.Consoler: the domain's serial port (a pty,
// logged to console.log) streamed by libvirtd, as virsh console has it.
// It has one client at a time: a new one takes the console over
// (VIR_DOMAIN_CONSOLE_FORCE) and the stream of the one before ends. The
// console has no size: Resize does nothing.
func (d *Driver) Console(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Terminal, error) {
	spec, err := specOf(g)
	if err != nil {
		return nil, err
	}
	s, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (guest.Terminal, error) {
		s.close()
		return nil, fmt.Errorf("guest %s: console: %w", g.Name, err)
	}
	dom, err := s.DomainLookupByName(spec.Domain)
	if err != nil {
		return fail(s.err(fmt.Errorf("domain %s: %w", spec.Domain, err)))
	}
	if err := checkSerialPty(s, dom); err != nil {
		return fail(err)
	}

	inR, inW := io.Pipe()
	out := newSerialBuffer(serialBacklog)
	opened := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		// go-libvirt reads what is typed from inR only once libvirtd has
		// opened the console: the first read says it did.
		err := s.DomainOpenConsoleBidirectional(dom, golibvirt.OptString{},
			&firstRead{r: inR, first: opened}, out,
			uint32(golibvirt.DomainConsoleForce|golibvirt.DomainConsoleSafe))
		out.close()
		inR.CloseWithError(io.ErrClosedPipe)
		done <- s.err(err)
	}()
	t := &serialTerminal{s: s, in: inW, out: out, done: done}
	select {
	case <-opened:
		return t, nil
	case err := <-done:
		if err == nil {
			err = errors.New("libvirtd ended the console stream at once")
		}
		s.close()
		return nil, fmt.Errorf("guest %s: console of domain %s: %w", g.Name, spec.Domain, err)
	case <-ctx.Done():
		t.Close()
		return nil, ctx.Err()
	}
}

// checkSerialPty answers ErrNotRunning for a domain that does not run and
// guest.ErrUnsupported for one whose serial port is not a pty (defined
// from a domain.xml written before the serial console was streamed).
func checkSerialPty(s *session, dom golibvirt.Domain) error {
	state, _, err := s.DomainGetState(dom, 0)
	if err != nil {
		return s.err(fmt.Errorf("domain %s: state: %w", dom.Name, err))
	}
	if golibvirt.DomainState(state) != golibvirt.DomainRunning {
		return fmt.Errorf("domain %s (state %s): %w", dom.Name, golibvirt.DomainState(state), ErrNotRunning)
	}
	raw, err := s.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return s.err(fmt.Errorf("domain %s: xml: %w", dom.Name, err))
	}
	var live libvirtxml.Domain
	if err := live.Unmarshal(raw); err != nil {
		return fmt.Errorf("domain %s: xml: %w", dom.Name, err)
	}
	if live.Devices == nil || len(live.Devices.Serials) == 0 ||
		live.Devices.Serials[0].Source == nil || live.Devices.Serials[0].Source.Pty == nil {
		return fmt.Errorf("domain %s: its serial port is not a pty, so libvirt cannot stream it (run generate-artefacts, then up --provision to re-make the guest): %w",
			dom.Name, guest.ErrUnsupported)
	}
	return nil
}

// firstRead closes first at its first Read.
type firstRead struct {
	r     io.Reader
	first chan struct{}
	once  sync.Once
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(func() { close(f.first) })
	return f.r.Read(p)
}

// serialTerminal is a console stream of libvirtd on a connection of its
// own.
type serialTerminal struct {
	s    *session
	in   *io.PipeWriter
	out  *serialBuffer
	done chan error
	once sync.Once
}

func (t *serialTerminal) Read(p []byte) (int, error)  { return t.out.Read(p) }
func (t *serialTerminal) Write(p []byte) (int, error) { return t.in.Write(p) }

// Resize implements guest.Terminal: a serial console has no size (the
// guest's stty sets it, if anything), so it does nothing.
func (t *serialTerminal) Resize(cols, rows uint16) error { return nil }

// Close finishes the stream (libvirtd releases the console) and closes
// the connection.
func (t *serialTerminal) Close() error {
	t.once.Do(func() {
		t.in.Close() // go-libvirt sends the end of the stream
		select {
		case <-t.done:
		case <-time.After(serialCloseWait):
		}
		t.out.close()
		t.s.close()
	})
	return nil
}

// serialBuffer is what the console printed, until it is read. Its writer,
// go-libvirt's stream reader, never blocks: go-libvirt delivers stream
// packets holding a lock, so a writer that waits for a slow client would
// stall the connection.
type serialBuffer struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	max    int
	closed bool
}

func newSerialBuffer(max int) *serialBuffer {
	b := &serialBuffer{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Write keeps p, or what of it fits in the backlog.
func (b *serialBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return len(p), nil
	}
	n := min(len(p), b.max-len(b.buf))
	b.buf = append(b.buf, p[:n]...)
	b.cond.Broadcast()
	return len(p), nil
}

// Read waits for output; after close it returns what is left, then EOF.
func (b *serialBuffer) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) == 0 && !b.closed {
		b.cond.Wait()
	}
	if len(b.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	if len(b.buf) == 0 {
		b.buf = nil
	}
	return n, nil
}

func (b *serialBuffer) close() {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
}
