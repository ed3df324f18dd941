package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// ErrUnreachable: libvirtd does not answer on its socket.
var ErrUnreachable = errors.New("cannot reach libvirtd")

// DefaultSocket is libvirtd's read-write socket.
const DefaultSocket = "/var/run/libvirt/libvirt-sock"

// session is one connection to libvirtd. go-libvirt's calls take no
// context, so the connection is closed when ctx ends: calls in flight then
// return at once, and err reports the context's error instead.
type session struct {
	*golibvirt.Libvirt
	ctx  context.Context
	conn net.Conn
	stop func() bool
}

// connect opens a session with libvirtd's qemu:///system.
func (d *Driver) connect(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(dctx, "unix", d.opts.Socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s: %v (is libvirtd running? start it with systemctl start libvirtd, or by hand: virtlogd -d && libvirtd -d)", ErrUnreachable, d.opts.Socket, unwrapOp(err))
	}
	l := golibvirt.NewWithDialer(dialers.NewAlreadyConnected(conn))
	s := &session{Libvirt: l, ctx: ctx, conn: conn}
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	// The handshake is bounded like the dial: a socket that accepts but
	// never answers is as unreachable as one that is missing.
	timer := time.AfterFunc(10*time.Second, func() { conn.Close() })
	err = l.ConnectToURI(golibvirt.QEMUSystem)
	timer.Stop()
	if err != nil {
		s.stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, d.opts.Socket, err)
	}
	return s, nil
}

// close ends the session; it does not wait long for a libvirtd that hangs.
func (s *session) close() {
	s.stop()
	done := make(chan struct{})
	go func() {
		_ = s.Disconnect()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	s.conn.Close()
}

// err turns the error of a call into the context's error when the context
// ended (the call failed because connect closed the connection).
func (s *session) err(err error) error {
	if err != nil && s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	return err
}

// unwrapOp drops net.OpError's "dial unix PATH:" prefix: callers name the
// socket themselves.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// isCode reports whether err is a libvirt error with one of the codes.
func isCode(err error, codes ...golibvirt.ErrorNumber) bool {
	var le golibvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	for _, c := range codes {
		if le.Code == uint32(c) {
			return true
		}
	}
	return false
}

func noDomain(err error) bool { return isCode(err, golibvirt.ErrNoDomain) }
func noPool(err error) bool   { return isCode(err, golibvirt.ErrNoStoragePool) }
func noVolume(err error) bool { return isCode(err, golibvirt.ErrNoStorageVol) }
func noSnapshot(err error) bool {
	return isCode(err, golibvirt.ErrNoDomainSnapshot)
}
