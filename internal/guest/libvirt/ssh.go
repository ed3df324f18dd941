package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	golibvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/topology"
)

// Console lines of TestbedOS's guest image convention (test/guestimage).
const (
	hostKeyMarker = "TESTBEDOS-GUEST-HOSTKEY"
	errorMarker   = "TESTBEDOS-GUEST-ERROR"
	// readyMarker: the guest's SSH server listens now.
	readyMarker = "TESTBEDOS-GUEST-READY"
)

// Readiness polling: the console is cheap to read, a dial to a guest that
// is not up yet costs the kernel's neighbour discovery (about 3 s) unless
// cut short. Before the console says ready, dials are short and spaced;
// once it does, the next dial goes at once and may take its time.
const (
	consolePoll      = 50 * time.Millisecond
	earlyDialEvery   = time.Second
	earlyDialTimeout = time.Second
)

// sshUser is who the server logs in as.
const sshUser = "root"

// LinkLocal is the IPv6 link-local address a NIC derives from its MAC
// (modified EUI-64), the address the server reaches guests at.
func LinkLocal(mac string) (netip.Addr, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return netip.Addr{}, fmt.Errorf("MAC %q: want 6 bytes", mac)
	}
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = hw[0]^0x02, hw[1], hw[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = hw[3], hw[4], hw[5]
	return netip.AddrFrom16(a), nil
}

// sshHost is "[fe80::…%bridge]" for the guest's first NIC.
func sshHost(g *topology.Guest) string {
	if len(g.Interfaces) == 0 {
		return ""
	}
	ifc := g.Interfaces[0]
	ll, err := LinkLocal(ifc.MAC)
	if err != nil {
		return ""
	}
	return "[" + ll.WithZone(ifc.Bridge).String() + "]"
}

// sshAddr is where the server dials the guest's SSH server.
func sshAddr(g *topology.Guest) string { return sshHost(g) + ":22" }

// Dial logs in to a running guest over SSH with the deployment's key, its
// host key pinned (see the package comment). The caller closes the client.
func (d *Driver) Dial(ctx context.Context, dep guest.Deployment, g *topology.Guest) (*ssh.Client, error) {
	if _, err := specOf(g); err != nil {
		return nil, err
	}
	if len(g.Interfaces) == 0 {
		return nil, fmt.Errorf("guest %s has no network interface to reach it over SSH", g.Name)
	}
	p := d.depPaths(dep, g)
	key, err := sshkey.Load(p.artefacts)
	if err != nil {
		return nil, err
	}
	return dialGuest(ctx, g, p, key.Signer, 0)
}

// dialAddr is sshAddr with the bridge's current interface index as the
// zone. The net package caches zone names for up to a minute, and a bridge
// made again under the same name (down, then up) has a new index.
func dialAddr(g *topology.Guest) (string, error) {
	if len(g.Interfaces) == 0 {
		return "", fmt.Errorf("guest %s has no network interface to reach it over SSH", g.Name)
	}
	ifc := g.Interfaces[0]
	ll, err := LinkLocal(ifc.MAC)
	if err != nil {
		return "", err
	}
	br, err := net.InterfaceByName(ifc.Bridge)
	if err != nil {
		return "", fmt.Errorf("bridge %s of switch %s: %w", ifc.Bridge, ifc.Switch, err)
	}
	return net.JoinHostPort(ll.WithZone(strconv.Itoa(br.Index)).String(), "22"), nil
}

// handshakeTimeout bounds an SSH handshake.
const handshakeTimeout = 5 * time.Second

// dialGuest logs in to the guest; connectTimeout bounds the TCP connect (0:
// as long as the handshake), handshakeTimeout the rest.
func dialGuest(ctx context.Context, g *topology.Guest, p paths, signer ssh.Signer, connectTimeout time.Duration) (*ssh.Client, error) {
	if connectTimeout == 0 {
		connectTimeout = handshakeTimeout
	}
	addr, err := dialAddr(g)
	if err != nil {
		return nil, err
	}
	pinned, _ := expectedHostKey(g, p)
	cfg := &ssh.ClientConfig{
		User:            sshUser,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeyCallback(g, p),
		Timeout:         handshakeTimeout,
	}
	if pinned != nil {
		cfg.HostKeyAlgorithms = []string{pinned.Type()}
	}
	cctx, cancelConnect := context.WithTimeout(ctx, connectTimeout)
	var dialer net.Dialer
	conn, err := dialer.DialContext(cctx, "tcp", addr)
	cancelConnect()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	// The handshake is bounded too, and ends with ctx.
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		if err == nil {
			c.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ssh handshake with %s: timed out", addr)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// expectedHostKey is the host key the guest must present: the last one its
// console announced, the one generate-artefacts made for it, or the one
// seen on first use; nil when none is known yet.
func expectedHostKey(g *topology.Guest, p paths) (ssh.PublicKey, string) {
	if out, err := os.ReadFile(p.console); err == nil {
		if k := consoleHostKey(out); k != nil {
			return k, "its console"
		}
	}
	if g.Libvirt != nil && g.Libvirt.Boot == topology.BootCloudImage {
		if k := readPublicKey(p.hostKey + ".pub"); k != nil {
			return k, p.hostKey + ".pub"
		}
	}
	if data, err := os.ReadFile(p.knownHosts); err == nil {
		if _, _, k, _, _, err := ssh.ParseKnownHosts(data); err == nil {
			return k, p.knownHosts
		}
	}
	return nil, ""
}

func hostKeyCallback(g *topology.Guest, p paths) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		want, from := expectedHostKey(g, p)
		if want == nil {
			// First use: remember it for the next logins and for ssh.sh.
			line := fmt.Sprintf("%s %s", sshHost(g), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))))
			return atomicfile.Write(p.knownHosts, []byte(line+"\n"), 0o644)
		}
		if !bytes.Equal(want.Marshal(), key.Marshal()) {
			return fmt.Errorf("guest %s presented host key %s, but %s says %s", g.Name, ssh.FingerprintSHA256(key), from, ssh.FingerprintSHA256(want))
		}
		return nil
	}
}

func consoleHostKey(out []byte) ssh.PublicKey {
	var key ssh.PublicKey
	for _, line := range strings.Split(string(out), "\n") {
		i := strings.Index(line, hostKeyMarker+" ")
		if i < 0 {
			continue
		}
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(line[i+len(hostKeyMarker)+1:]))); err == nil {
			key = k
		}
	}
	return key
}

func readPublicKey(path string) ssh.PublicKey {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return k
}

// consoleTrouble finds, in console output, a line saying the guest will not
// come up: a setup error of the guest image or a kernel panic.
func consoleTrouble(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, errorMarker) || strings.Contains(line, "Kernel panic") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// waitReady waits until the guest is ready: it accepts an SSH login and,
// for a cloud image, cloud-init has finished (so a setup script does not
// race it). The deadline is readyLimitOf's, grown while more guests boot
// at once. It gives up early when the domain stops or the console reports
// a failure; errors carry the last real error, the setting to change and
// the end of the console. status is cloud-init's, if asked.
func (d *Driver) waitReady(ctx context.Context, s *session, dep guest.Deployment, g *topology.Guest, dom golibvirt.Domain) (client *ssh.Client, status string, err error) {
	p := d.depPaths(dep, g)
	key, err := sshkey.Load(p.artefacts)
	if err != nil {
		return nil, "", err
	}
	defer d.boots.enter()()
	limit := d.readyLimitOf(g.Libvirt)
	start := time.Now()
	var (
		last       error
		lastDial   time.Time
		dialedLate bool // dialed since the console said ready
		lastState  time.Time
		out        []byte
	)
	note := func(err error) {
		// An attempt cut short by the end of the wait says nothing.
		if err != nil && ctx.Err() == nil {
			last = err
		}
	}
	expired := func() bool {
		limit.see(d.boots.count())
		return time.Since(start) > limit.total()
	}
	timedOut := func(what string) error {
		lastText := "none: nothing answered"
		if last != nil {
			lastText = last.Error()
		}
		return fmt.Errorf("guest %s not ready %s: %s (last error: %s)\nconsole (%s):\n%s", g.Name, limit.describe(), what, lastText, p.console, tail(out, 2000))
	}
	dial := func() (*ssh.Client, error) {
		for {
			out, _ = os.ReadFile(p.console)
			if msg := consoleTrouble(out); msg != "" {
				return nil, fmt.Errorf("guest %s failed to boot: %s\nconsole (%s):\n%s", g.Name, msg, p.console, tail(out, 2000))
			}
			ready := bytes.Contains(out, []byte(readyMarker))
			switch {
			case ready && !dialedLate:
				dialedLate, lastDial = true, time.Now()
				c, err := dialGuest(ctx, g, p, key.Signer, 0)
				if err == nil {
					return c, nil
				}
				note(err)
			case time.Since(lastDial) >= earlyDialEvery:
				lastDial = time.Now()
				timeout := earlyDialTimeout
				if ready {
					timeout = 0 // a ready guest's neighbour entry may take a while
				}
				c, err := dialGuest(ctx, g, p, key.Signer, timeout)
				if err == nil {
					return c, nil
				}
				note(err)
			}
			if time.Since(lastState) >= 2*time.Second {
				lastState = time.Now()
				state, _, err := s.DomainGetState(dom, 0)
				if err == nil && golibvirt.DomainState(state) != golibvirt.DomainRunning {
					return nil, fmt.Errorf("guest %s stopped while booting (domain state %s)\nconsole (%s):\n%s", g.Name, golibvirt.DomainState(state), p.console, tail(out, 2000))
				}
			}
			if expired() {
				return nil, timedOut("not reachable over SSH at " + sshAddr(g))
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(consolePoll):
			}
		}
	}
	for {
		c, err := dial()
		if err != nil {
			return nil, "", err
		}
		if g.Libvirt.Boot != topology.BootCloudImage {
			return c, "", nil
		}
		wctx, cancel := context.WithDeadline(ctx, start.Add(limit.total()))
		status, err := awaitCloudInit(wctx, c)
		cancel()
		if err == nil {
			return c, status, nil
		}
		c.Close()
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			note(err)
		}
		if expired() {
			return nil, "", timedOut("SSH answers, but cloud-init has not finished")
		}
		lastDial = time.Time{}
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

// maxScript bounds a setup script copied into a guest.
const maxScript = 16 << 20

// RunScript copies the script into the guest over SSH and runs it there as
// root, with cloud_image's environment, TESTBEDOS_DEPLOYMENT and
// TESTBEDOS_GUEST set; its output goes
// line by line into log, prefixed "[guest] ". It first waits for the guest
// to answer, at most ReadyTimeout. A non-zero exit is an error naming the
// status; cancelling ctx closes the session.
func (d *Driver) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, script string, log actlog.Log) error {
	spec, err := specOf(g)
	if err != nil {
		return err
	}
	body, _, err := guest.ReadFile(ctx, dep.Files, script, maxScript)
	if err != nil {
		return fmt.Errorf("guest %s: script: %w", g.Name, err)
	}
	s, err := d.connect(ctx)
	if err != nil {
		return err
	}
	dom, err := s.DomainLookupByName(spec.Domain)
	if err != nil {
		s.close()
		if noDomain(err) {
			return fmt.Errorf("guest %s is not up (no domain %s)", g.Name, spec.Domain)
		}
		return s.err(err)
	}
	client, _, err := d.waitReady(ctx, s, dep, g, dom)
	s.close()
	if err != nil {
		return err
	}
	defer client.Close()
	env := maps.Clone(spec.Environment)
	if env == nil {
		env = map[string]string{}
	}
	env["TESTBEDOS_DEPLOYMENT"], env["TESTBEDOS_GUEST"] = dep.Name, g.Name
	return runOver(ctx, client, g.Name, script, body, env, log.Writer("["+g.Name+"] "))
}

// remoteRun stores the script (read from stdin) in a temporary file, runs
// it, removes it and exits with its status. A script without "#!" runs
// under the shell, as POSIX shells do with such files.
const remoteRun = `f=$(mktemp /tmp/testbedos-script.XXXXXX) || exit 125
cat >"$f" && chmod 700 "$f" || { rm -f "$f"; exit 125; }
cd /tmp; %s "$f" </dev/null; rc=$?; rm -f "$f"; exit $rc`

// runOver runs a script over an SSH client, writing its output to out.
func runOver(ctx context.Context, client *ssh.Client, guestName, script string, body []byte, env map[string]string, out io.WriteCloser) error {
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("guest %s: ssh session: %w", guestName, err)
	}
	defer sess.Close()
	var assign []string
	for _, k := range sortedKeys(env) {
		assign = append(assign, k+"="+shellQuote(env[k]))
	}
	w := &lockedWriter{w: out}
	sess.Stdout, sess.Stderr = w, w
	sess.Stdin = bytes.NewReader(body)
	if err := sess.Start(fmt.Sprintf(remoteRun, strings.Join(assign, " "))); err != nil {
		return fmt.Errorf("guest %s: start %s: %w", guestName, script, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		client.Close()
		<-done
		out.Close()
		return fmt.Errorf("guest %s: script %s: %w", guestName, script, ctx.Err())
	}
	out.Close()
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(werr, &exit) && exit.Signal() != "":
		return fmt.Errorf("guest %s: script %s killed by signal %s", guestName, script, exit.Signal())
	case errors.As(werr, &exit) && exit.ExitStatus() == 125:
		return fmt.Errorf("guest %s: script %s exited with code 125 (the code also when it cannot be copied into the guest's /tmp)", guestName, script)
	case errors.As(werr, &exit):
		return fmt.Errorf("guest %s: script %s exited with code %d", guestName, script, exit.ExitStatus())
	case errors.As(werr, &missing):
		return fmt.Errorf("guest %s: script %s: the connection ended without an exit status", guestName, script)
	case werr != nil:
		return fmt.Errorf("guest %s: script %s: %w", guestName, script, werr)
	}
	return nil
}

// lockedWriter serialises the stdout and stderr copies of a session.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
