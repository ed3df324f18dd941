package guestimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Lines the guest prints on its console.
const (
	// ReadyMarker starts the line printed once the SSH server listens:
	// "TESTBEDOS-GUEST-READY hostname=vm1 ip=eth0=10.0.0.20/24 mac=... uptime=4.20".
	ReadyMarker = "TESTBEDOS-GUEST-READY"
	// HostKeyMarker starts the line, printed just before the ready line,
	// holding the SSH host key in authorized_keys format.
	HostKeyMarker = "TESTBEDOS-GUEST-HOSTKEY"
	// ErrorMarker starts a line reporting a setup failure (a required
	// module, the network configuration, the SSH server).
	ErrorMarker = "TESTBEDOS-GUEST-ERROR"
)

// Ready is what the guest reported when it became ready.
type Ready struct {
	Line     string            // the ready line
	Fields   map[string]string // its key=value fields: hostname, ip, mac, uptime
	HostKey  ssh.PublicKey     // nil if the host key line was unreadable
	Console  string            // the console output up to the ready line
	Uptime   string            // guest uptime (seconds) when ready
	Hostname string
}

// ParseConsole looks for the ready line in console output. It returns
// (nil, nil) while the guest is not ready yet, and an error when the guest
// reported an error or the kernel panicked.
func ParseConsole(out []byte) (*Ready, error) {
	s := strings.ReplaceAll(string(out), "\r", "")
	var hostKey ssh.PublicKey
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, ErrorMarker); i >= 0 {
			return nil, fmt.Errorf("guest: %s", strings.TrimSpace(line[i:]))
		}
		if strings.Contains(line, "Kernel panic") {
			return nil, fmt.Errorf("guest: %s", strings.TrimSpace(line))
		}
		if i := strings.Index(line, HostKeyMarker+" "); i >= 0 {
			if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line[i+len(HostKeyMarker)+1:])); err == nil {
				hostKey = k
			}
		}
		if i := strings.Index(line, ReadyMarker); i >= 0 && (len(line) == i+len(ReadyMarker) || line[i+len(ReadyMarker)] == ' ') {
			r := &Ready{Line: strings.TrimSpace(line[i:]), Fields: map[string]string{}, HostKey: hostKey}
			for _, f := range strings.Fields(line[i+len(ReadyMarker):]) {
				if k, v, ok := strings.Cut(f, "="); ok {
					r.Fields[k] = v
				}
			}
			r.Uptime, r.Hostname = r.Fields["uptime"], r.Fields["hostname"]
			end := strings.Index(s, line) + len(line)
			r.Console = s[:end]
			return r, nil
		}
	}
	return nil, nil
}

// WaitReady polls a serial console log file (QEMU -serial file:PATH, a
// libvirt <serial type='file'>) until the guest is ready, reports an error,
// or ctx ends. Errors carry the end of the console output.
func WaitReady(ctx context.Context, consoleLog string) (*Ready, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := os.ReadFile(consoleLog)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		r, perr := ParseConsole(out)
		if r != nil {
			return r, nil
		}
		if perr != nil {
			return nil, fmt.Errorf("%v\nconsole (%s):\n%s", perr, consoleLog, tail(out, 3000))
		}
		select {
		case <-ctx.Done():
			cause := context.Cause(ctx)
			return nil, fmt.Errorf("guest not ready: %v\nconsole (%s):\n%s", cause, consoleLog, tail(out, 3000))
		case <-tick.C:
		}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
