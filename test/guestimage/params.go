package guestimage

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/crypto/ssh"
)

// MaxCmdline is the x86 kernel's command line limit (COMMAND_LINE_SIZE,
// including the terminating NUL).
const MaxCmdline = 2048

// Params are the guest's settings, passed on the kernel command line.
type Params struct {
	// IP is eth0's address: tb.ip=10.0.0.20/24.
	IP netip.Prefix
	// Gateway is the default route: tb.gw=10.0.0.1.
	Gateway netip.Addr
	// Hostname: tb.hostname=vm1 (default testbedos-guest).
	Hostname string
	// AuthorizedKeys are authorized_keys lines ("ssh-ed25519 AAAA...
	// comment"): one tb.key=BASE64(line) each.
	AuthorizedKeys []string
	// Nets are addresses of other NICs: tb.net=eth1,10.1.0.5/24 or, by
	// MAC, tb.net=52:54:00:00:00:02,10.1.0.5/24.
	Nets []NetAddr
	// Routes are static routes: tb.route=10.2.0.0/16,10.0.0.1.
	Routes []Route
	// DNS servers: tb.dns=10.0.0.1 (written to /etc/resolv.conf).
	DNS []netip.Addr
	// Console is the kernel console. Default "ttyS0" (the first serial
	// port). "none" leaves it out.
	Console string
	// Verbose keeps the kernel's boot messages (default: quiet).
	Verbose bool
	// Extra are more kernel parameters, appended as they are.
	Extra []string
}

// NetAddr is an address for a NIC named by interface name or MAC.
type NetAddr struct {
	Dev  string // "eth1" or "52:54:00:00:00:02"
	Addr netip.Prefix
}

// Route is a static route.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Cmdline returns the kernel command line for p: console and panic
// settings followed by the tb.* parameters.
func (p Params) Cmdline() (string, error) {
	var args []string
	switch p.Console {
	case "none":
	case "":
		args = append(args, "console=ttyS0")
	default:
		args = append(args, "console="+p.Console)
	}
	// panic=-1: reboot at once on a panic (QEMU -no-reboot / libvirt
	// on_crash then stop the VM rather than hanging).
	args = append(args, "panic=-1")
	// The IO-APIC timer check can fail under TCG on a busy host.
	args = append(args, "no_timer_check")
	if !p.Verbose {
		args = append(args, "quiet")
	}
	if p.IP.IsValid() {
		args = append(args, "tb.ip="+p.IP.String())
	}
	if p.Gateway.IsValid() {
		args = append(args, "tb.gw="+p.Gateway.String())
	}
	if p.Hostname != "" {
		if !validHostname(p.Hostname) {
			return "", fmt.Errorf("guestimage: bad hostname %q", p.Hostname)
		}
		args = append(args, "tb.hostname="+p.Hostname)
	}
	for _, n := range p.Nets {
		if !n.Addr.IsValid() || !validDev(n.Dev) {
			return "", fmt.Errorf("guestimage: bad net %q,%v", n.Dev, n.Addr)
		}
		args = append(args, fmt.Sprintf("tb.net=%s,%s", n.Dev, n.Addr))
	}
	for _, r := range p.Routes {
		if !r.Dst.IsValid() || !r.Via.IsValid() {
			return "", fmt.Errorf("guestimage: bad route %v via %v", r.Dst, r.Via)
		}
		args = append(args, fmt.Sprintf("tb.route=%s,%s", r.Dst, r.Via))
	}
	for _, d := range p.DNS {
		args = append(args, "tb.dns="+d.String())
	}
	for _, k := range p.AuthorizedKeys {
		k = strings.TrimSpace(k)
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			return "", fmt.Errorf("guestimage: authorized key %.30q: %v", k, err)
		}
		args = append(args, "tb.key="+base64.StdEncoding.EncodeToString([]byte(k)))
	}
	for _, e := range p.Extra {
		if e == "" || strings.ContainsAny(e, " \t\n") {
			return "", fmt.Errorf("guestimage: bad extra kernel parameter %q", e)
		}
		args = append(args, e)
	}
	s := strings.Join(args, " ")
	if len(s) >= MaxCmdline {
		return "", fmt.Errorf("guestimage: kernel command line is %d bytes, the limit is %d", len(s), MaxCmdline-1)
	}
	return s, nil
}

func validHostname(h string) bool {
	if len(h) > 63 {
		return false
	}
	for i, c := range h {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0 || c == '.' && i > 0
		if !ok {
			return false
		}
	}
	return h != ""
}

func validDev(d string) bool {
	if _, err := net.ParseMAC(d); err == nil {
		return true
	}
	if d == "" || len(d) > 15 {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// GenerateKey makes a new ed25519 key for logging in to guests, and its
// authorized_keys line for Params.AuthorizedKeys.
func GenerateKey() (ssh.Signer, string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " testbedos-test"
	return s, line, nil
}
