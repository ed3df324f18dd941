package nettest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Ping sends ICMP echo requests from inside the named namespace to dst
// until one is answered or timeout has passed; it needs no ping binary.
func Ping(namespace string, dst net.IP, timeout time.Duration) error {
	dst4 := dst.To4()
	if dst4 == nil {
		return fmt.Errorf("ping %s: IPv4 only", dst)
	}
	// A socket belongs to the namespace it was created in, so only its
	// creation needs a thread inside the guest.
	var fd int
	err := InNamespace(namespace, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		return fmt.Errorf("ping from %s: raw socket: %w", namespace, err)
	}
	defer unix.Close(fd)

	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	to := &unix.SockaddrInet4{}
	copy(to.Addr[:], dst4)
	deadline := time.Now().Add(timeout)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		if err := unix.Sendto(fd, echoRequest(id, seq), 0, to); err != nil {
			return fmt.Errorf("ping %s from %s: send: %w", dst, namespace, err)
		}
		// Wait up to 300 ms for this request's reply, then send another
		// (the first may be lost while neighbours are being resolved).
		wait := min(300*time.Millisecond, time.Until(deadline))
		if ok, err := awaitReply(fd, dst4, id, seq, time.Now().Add(wait)); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("ping %s from %s: no reply within %s", dst, namespace, timeout)
}

func awaitReply(fd int, from net.IP, id, seq uint16, until time.Time) (bool, error) {
	buf := make([]byte, 1500)
	for {
		left := time.Until(until)
		if left <= 0 {
			return false, nil
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return false, err
		}
		n, sa, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		src, ok := sa.(*unix.SockaddrInet4)
		if !ok || !net.IP(src.Addr[:]).Equal(from) || n < 20 {
			continue
		}
		// Raw IPv4 sockets deliver the IP header first.
		ihl := int(buf[0]&0x0f) * 4
		icmp := buf[ihl:n]
		if len(icmp) >= 8 && icmp[0] == 0 && icmp[1] == 0 &&
			binary.BigEndian.Uint16(icmp[4:]) == id && binary.BigEndian.Uint16(icmp[6:]) == seq {
			return true, nil
		}
	}
}

func echoRequest(id, seq uint16) []byte {
	b := make([]byte, 8, 8+16)
	b[0] = 8 // echo request, code 0
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	b = append(b, "testbedos-ping.."...)
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
