package impair

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A minimal client of the kernel's nfnetlink_queue: bind one queue number,
// receive its packets (copied whole), answer a verdict per packet, possibly
// with a changed payload. The protocol is small and stable
// (linux/netfilter/nfnetlink_queue.h); no maintained Go library of it is
// reachable from this project's module proxy.

const (
	nfnlSubsysQueue = 3

	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqnlCfgCmdBind = 1

	nfqaCfgCmd      = 1
	nfqaCfgParams   = 2
	nfqaCfgQueueMax = 3
	nfqaCfgMask     = 4
	nfqaCfgFlags    = 5

	nfqaCfgFFailOpen = 1 // accept, rather than drop, when the queue is full

	nfqnlCopyPacket = 2

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2
	nfqaPayload    = 10

	verdictDrop   = 0
	verdictAccept = 1

	// nfqMaxLen is how many packets the kernel holds for one queue (the
	// daemon holds them all while they are delayed).
	nfqMaxLen = 10000
)

// ErrQueueBusy: the queue number is bound by another socket.
var ErrQueueBusy = errors.New("queue number in use")

// nfQueue is one bound queue.
type nfQueue struct {
	num  uint16
	conn *netlink.Conn
}

var _ io.Closer = (*nfQueue)(nil)

// queuedPacket is a packet the kernel handed over, awaiting its verdict.
type queuedPacket struct {
	id      uint32
	payload []byte
}

// openNFQueue binds queue num on a new netlink socket in the network
// namespace netns (an open namespace file).
func openNFQueue(num uint16, netns int) (*nfQueue, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("nfqueue %d: %w", num, err)
	}
	q := &nfQueue{num: num, conn: conn}
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, 0}
	if err := q.config(attr(nfqaCfgCmd, cmd)); err != nil {
		conn.Close()
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("nfqueue %d: %w", num, ErrQueueBusy)
		}
		return nil, fmt.Errorf("nfqueue %d: bind: %w", num, err)
	}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0xffff)
	params[4] = nfqnlCopyPacket
	maxLen := binary.BigEndian.AppendUint32(nil, nfqMaxLen)
	flags := binary.BigEndian.AppendUint32(nil, nfqaCfgFFailOpen)
	if err := q.config(attr(nfqaCfgParams, params), attr(nfqaCfgQueueMax, maxLen),
		attr(nfqaCfgFlags, flags), attr(nfqaCfgMask, flags)); err != nil {
		q.Close()
		return nil, fmt.Errorf("nfqueue %d: configure: %w", num, err)
	}
	_ = conn.SetReadBuffer(8 << 20)
	return q, nil
}

// Close closes the socket, which unbinds the queue (an explicit unbind
// would wait behind a blocked receive); a blocked receive returns.
func (q *nfQueue) Close() error { return q.conn.Close() }

type nlattr struct {
	typ  uint16
	data []byte
}

func attr(typ uint16, data []byte) nlattr { return nlattr{typ, data} }

// message is an nfnetlink message of the queue subsystem for this queue.
func (q *nfQueue) message(typ int, flags netlink.HeaderFlags, attrs ...nlattr) (netlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	for _, a := range attrs {
		ae.Bytes(a.typ, a.data)
	}
	b, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, err
	}
	// struct nfgenmsg: family, version, res_id (the queue, big endian).
	data := append([]byte{unix.AF_UNSPEC, 0, byte(q.num >> 8), byte(q.num)}, b...)
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | typ), Flags: netlink.Request | flags},
		Data:   data,
	}, nil
}

func (q *nfQueue) config(attrs ...nlattr) error {
	m, err := q.message(nfqnlMsgConfig, netlink.Acknowledge, attrs...)
	if err != nil {
		return err
	}
	_, err = q.conn.Execute(m)
	return err
}

// verdict answers packet id: accept (with payload, if not nil, in place of
// the packet's) or drop.
func (q *nfQueue) verdict(id uint32, accept bool, payload []byte) error {
	v := uint32(verdictDrop)
	if accept {
		v = verdictAccept
	}
	hdr := binary.BigEndian.AppendUint32(nil, v)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	attrs := []nlattr{attr(nfqaVerdictHdr, hdr)}
	if payload != nil {
		attrs = append(attrs, attr(nfqaPayload, payload))
	}
	m, err := q.message(nfqnlMsgVerdict, 0, attrs...)
	if err != nil {
		return err
	}
	_, err = q.conn.Send(m)
	return err
}

// receive returns the next packets the kernel queued. A full socket buffer
// (ENOBUFS: the kernel dropped messages) is not an error.
func (q *nfQueue) receive() ([]queuedPacket, error) {
	msgs, err := q.conn.Receive()
	if err != nil {
		if errors.Is(err, unix.ENOBUFS) {
			return nil, nil
		}
		return nil, err
	}
	var out []queuedPacket
	for _, m := range msgs {
		if m.Header.Type != netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) || len(m.Data) < 4 {
			continue
		}
		p, ok := parsePacket(m.Data[4:])
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func parsePacket(b []byte) (queuedPacket, bool) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return queuedPacket{}, false
	}
	var p queuedPacket
	ok := false
	for ad.Next() {
		switch ad.Type() {
		case nfqaPacketHdr:
			if h := ad.Bytes(); len(h) >= 4 {
				p.id = binary.BigEndian.Uint32(h)
				ok = true
			}
		case nfqaPayload:
			p.payload = ad.Bytes()
		}
	}
	return p, ok && ad.Err() == nil
}
