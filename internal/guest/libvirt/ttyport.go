package libvirt

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/topology"
)

// ttyTCPDevice is the guest's serial port behind tcp_tty_port: the second
// one, as the first stays the pty that libvirt streams (Console) and logs.
const ttyTCPDevice = "ttyS1"

// tcpSerial is the serial port that QEMU serves, raw, on 127.0.0.1:port;
// a client that connects reaches the guest's ttyS1.
func tcpSerial(port int) libvirtxml.DomainSerial {
	n := uint(1)
	return libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{TCP: &libvirtxml.DomainChardevSourceTCP{
			Mode: "bind", Host: "127.0.0.1", Service: strconv.Itoa(port),
		}},
		Protocol: &libvirtxml.DomainChardevProtocol{Type: "raw"},
		Target:   &libvirtxml.DomainSerialTarget{Port: &n},
	}
}

// checkTTYPort refuses a console port another program already listens on,
// before anything of the guest is made (QEMU would fail to start later,
// with a less helpful message).
func checkTTYPort(g *topology.Guest) error {
	port := g.Libvirt.TCPTTYPort
	if port <= 0 {
		return nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("guest %s: tcp_tty_port %d is in use on 127.0.0.1 by another program: choose a free port", g.Name, port)
	}
	if err != nil {
		return fmt.Errorf("guest %s: tcp_tty_port %d: %w", g.Name, port, err)
	}
	return l.Close()
}

// onMain reports whether g runs on the main host, the one generating its
// artefacts (a state without hosts has only that one).
func onMain(st *topology.State, g *topology.Guest) bool {
	for _, h := range st.Hosts {
		if h.Name == g.Host {
			return h.Main
		}
	}
	return true
}
