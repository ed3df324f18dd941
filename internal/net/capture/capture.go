// Package capture writes pcap streams of what crosses a host link, filtered
// in the kernel by classic BPF compiled from a small tcpdump-like language.
package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// pcap file format: the classic libpcap header, microsecond timestamps,
// Ethernet frames.
const (
	pcapMagic        = 0xa1b2c3d4
	linkTypeEthernet = 1
)

// pollEvery is how often a capture with no packets checks that its context
// has not ended.
const pollEvery = 200 * time.Millisecond

// Capture writes a pcap stream of the packets of link name (both
// directions, as this host's end of the link sees them) to w: the pcap
// global header once the socket is open, then one record per packet, each
// written with one Write. It ends without error when ctx ends or w refuses
// a write (the reader went away). filter, when not nil, runs in the kernel.
func Capture(ctx context.Context, name string, filter Filter, w io.Writer) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("capture on link %s: %w", name, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return fmt.Errorf("capture on link %s: open packet socket: %w", name, err)
	}
	defer unix.Close(fd)
	if len(filter) > 0 {
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: (*unix.SockFilter)(unsafe.Pointer(&filter[0]))}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fmt.Errorf("capture on link %s: attach the filter: %w", name, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: link.Attrs().Index}); err != nil {
		return fmt.Errorf("capture on link %s: bind: %w", name, err)
	}
	tv := unix.NsecToTimeval(pollEvery.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("capture on link %s: %w", name, err)
	}

	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], pcapMagic)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], snapLen)
	binary.LittleEndian.PutUint32(hdr[20:], linkTypeEthernet)
	if _, err := w.Write(hdr); err != nil {
		return nil
	}
	buf := make([]byte, 16+65536+14)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf[16:], unix.MSG_TRUNC)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENETDOWN):
			// No packet for a while, or the link went down (netem
			// --down): keep listening while the link exists. A deleted
			// link (its guest destroyed, a down) never comes back.
			if gone(link.Attrs().Index, name) {
				return fmt.Errorf("capture on link %s: %w", name, ErrLinkGone)
			}
			if errors.Is(err, unix.ENETDOWN) {
				time.Sleep(pollEvery)
			}
			continue
		case err != nil:
			return fmt.Errorf("capture on link %s: %w", name, err)
		}
		kept := min(n, len(buf)-16)
		now := time.Now()
		binary.LittleEndian.PutUint32(buf[0:], uint32(now.Unix()))
		binary.LittleEndian.PutUint32(buf[4:], uint32(now.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(buf[8:], uint32(kept))
		binary.LittleEndian.PutUint32(buf[12:], uint32(n))
		if _, err := w.Write(buf[:16+kept]); err != nil {
			return nil
		}
	}
	return nil
}

// ErrLinkGone: the link a capture listened on was deleted.
var ErrLinkGone = errors.New("the link was deleted")

// gone reports whether link index no longer exists as name.
func gone(index int, name string) bool {
	l, err := netlink.LinkByIndex(index)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return true
	}
	return err == nil && l.Attrs().Name != name
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
