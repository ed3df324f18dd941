package nettest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Pinger measures ICMP echo round trips from inside a named namespace,
// over one socket for many requests (so the cost of entering the namespace
// is paid once, not per request).
type Pinger struct {
	fd  int
	dst net.IP
	id  uint16
	seq uint16
}

var _ io.Closer = (*Pinger)(nil)

// NewPinger opens an echo socket inside namespace towards dst (IPv4).
func NewPinger(namespace string, dst net.IP) (*Pinger, error) {
	dst4 := dst.To4()
	if dst4 == nil {
		return nil, fmt.Errorf("ping %s: IPv4 only", dst)
	}
	p := &Pinger{dst: dst4}
	err := InNamespace(namespace, func() error {
		var err error
		p.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ping from %s: raw socket: %w", namespace, err)
	}
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	p.id = binary.BigEndian.Uint16(idb[:])
	return p, nil
}

// Echo sends one request and returns the time until its reply.
func (p *Pinger) Echo(timeout time.Duration) (time.Duration, error) {
	p.seq++
	to := &unix.SockaddrInet4{}
	copy(to.Addr[:], p.dst)
	start := time.Now()
	if err := unix.Sendto(p.fd, echoRequest(p.id, p.seq), 0, to); err != nil {
		return 0, fmt.Errorf("ping %s: send: %w", p.dst, err)
	}
	ok, err := awaitReply(p.fd, p.dst, p.id, p.seq, start.Add(timeout))
	if err != nil {
		return 0, fmt.Errorf("ping %s: %w", p.dst, err)
	}
	if !ok {
		return 0, fmt.Errorf("ping %s: no reply within %s", p.dst, timeout)
	}
	return time.Since(start), nil
}

// Close closes the socket.
func (p *Pinger) Close() error { return unix.Close(p.fd) }

// ListenTCP opens a TCP listener inside namespace: a socket belongs to the
// namespace of the thread that creates it, so only creation needs a thread
// inside; Accept and reads work from any goroutine.
func ListenTCP(namespace, addr string) (net.Listener, error) {
	var ln net.Listener
	err := InNamespace(namespace, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	return ln, err
}

// DialTCP connects from inside namespace.
func DialTCP(namespace, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := InNamespace(namespace, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	return c, err
}

// TCPThroughput sends n bytes over TCP from namespace from to a receiver in
// namespace to listening on addr (ip:port, an address of to), and returns
// the rate in bytes per second measured at the receiver, from the first
// byte to the last.
func TCPThroughput(from, to, addr string, n int64) (float64, error) {
	ln, err := ListenTCP(to, addr)
	if err != nil {
		return 0, fmt.Errorf("listen in %s: %w", to, err)
	}
	defer ln.Close()
	type result struct {
		rate float64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		first, err := io.ReadFull(c, buf[:1])
		if err != nil {
			done <- result{err: err}
			return
		}
		start := time.Now()
		got, err := io.CopyBuffer(io.Discard, io.LimitReader(c, n-int64(first)), buf)
		elapsed := time.Since(start)
		if err == nil && got != n-int64(first) {
			err = io.ErrUnexpectedEOF
		}
		done <- result{rate: float64(got) / elapsed.Seconds(), err: err}
	}()
	c, err := DialTCP(from, ln.Addr().String(), 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("dial from %s: %w", from, err)
	}
	buf := make([]byte, 256<<10)
	var sent int64
	for sent < n && err == nil {
		var w int
		w, err = c.Write(buf[:min(int64(len(buf)), n-sent)])
		sent += int64(w)
	}
	cerr := c.Close()
	r := <-done
	return r.rate, errors.Join(err, cerr, r.err)
}
