package guestimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/testenv"
)

// TestBoot builds the image (cached), boots it under QEMU TCG on a Linux
// bridge, and reaches it over SSH from a network namespace on the same
// bridge.
//
// The whole lab lives in network namespaces this test creates: a "lab"
// namespace holds the bridge and the VM's tap, a "peer" namespace holds the
// other end of a veth on that bridge. So nothing shows on the host's
// network, the host firewall (Docker's FORWARD DROP with br_netfilter, see
// MACHINE-NOTES) does not apply, and when the test process dies the
// namespaces, links and (through Pdeathsig) QEMU go with it.
func TestBoot(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		testenv.Skip(t, "qemu-system-x86_64 not installed (scripts/install-test-deps.sh installs it): not booting the test image")
	}
	testenv.RequireRoot(t, "network namespaces, bridges and taps")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Image.
	start := time.Now()
	img, err := Cached(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s: kernel %s, cached=%v, Cached() took %v (build time %v)",
		img.Dir, img.KernelVersion, img.Cached, time.Since(start).Round(time.Millisecond), img.BuildTime.Round(time.Millisecond))

	if img.KernelELF != "" {
		t.Run("vmlinux-pvh", func(t *testing.T) { bootAndCheck(ctx, t, qemu, img, img.KernelELF) })
	} else {
		t.Logf("no PVH kernel in the image: only booting %s", img.Kernel)
	}
	t.Run("vmlinuz", func(t *testing.T) { bootAndCheck(ctx, t, qemu, img, img.Kernel) })
}

// bootAndCheck boots img with the given kernel file, reaches it over SSH
// and powers it off.
func bootAndCheck(ctx context.Context, t *testing.T, qemu string, img *Image, kernel string) {
	// Network: bridge + tap in the lab namespace, veth to the peer namespace.
	prefix := randomPrefix(t)
	lab := newNetns(t)
	peer := newNetns(t)
	labH, err := netlink.NewHandleAt(lab)
	if err != nil {
		t.Fatal(err)
	}
	defer labH.Close()
	peerH, err := netlink.NewHandleAt(peer)
	if err != nil {
		t.Fatal(err)
	}
	defer peerH.Close()

	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: prefix + "br"}}
	if err := labH.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: prefix + "h", MasterIndex: br.Index},
		PeerName:      prefix + "p",
		PeerNamespace: netlink.NsFd(int(peer)),
	}
	if err := labH.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	peerIP := netip.MustParsePrefix("10.213.0.1/24")
	vmIP := netip.MustParsePrefix("10.213.0.20/24")
	for _, step := range []func() error{
		func() error { return labH.LinkSetUp(br) },
		func() error { return labH.LinkSetUp(veth) },
		func() error { return linkUp(peerH, "lo") },
		func() error {
			l, err := peerH.LinkByName(prefix + "p")
			if err != nil {
				return err
			}
			a, _ := netlink.ParseAddr(peerIP.String())
			if err := peerH.AddrAdd(l, a); err != nil {
				return err
			}
			return peerH.LinkSetUp(l)
		},
	} {
		if err := step(); err != nil {
			t.Fatalf("network setup: %v", err)
		}
	}
	// Two taps, for two NICs (eth0 by position, eth1 by MAC). A tap is
	// created in the lab namespace (it belongs to the namespace it is
	// opened in) and handed to QEMU as an open file; it is not
	// persistent, so it disappears with QEMU.
	var tapFiles []*os.File
	defer func() {
		for _, f := range tapFiles {
			f.Close()
		}
	}()
	for i := range 2 {
		tap := &netlink.Tuntap{
			LinkAttrs:  netlink.LinkAttrs{Name: fmt.Sprintf("%st%d", prefix, i), MasterIndex: br.Index},
			Mode:       netlink.TUNTAP_MODE_TAP,
			Flags:      netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR,
			NonPersist: true,
			Queues:     1,
		}
		if err := inNetns(lab, func() error { return netlink.LinkAdd(tap) }); err != nil {
			t.Fatalf("tap: %v", err)
		}
		tapFiles = append(tapFiles, tap.Fds...)
		if err := linkUp(labH, tap.Name); err != nil {
			t.Fatalf("tap up: %v", err)
		}
	}

	// Guest.
	key, authLine, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	mac := "52:54:00:" + prefix[3:5] + ":" + prefix[5:7] + ":" + prefix[7:9]
	mac2 := "52:54:01:" + prefix[3:5] + ":" + prefix[5:7] + ":" + prefix[7:9]
	params := Params{
		IP:             vmIP,
		Gateway:        peerIP.Addr(),
		Hostname:       "tbvm1",
		AuthorizedKeys: []string{authLine},
		Nets:           []NetAddr{{Dev: strings.ToUpper(mac2), Addr: netip.MustParsePrefix("10.213.1.20/24")}},
		Routes:         []Route{{Dst: netip.MustParsePrefix("10.99.0.0/16"), Via: peerIP.Addr()}},
		DNS:            []netip.Addr{peerIP.Addr()},
	}
	cmdline, err := params.Cmdline()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	consoleLog := filepath.Join(dir, "console.log")
	qmpSock := filepath.Join(dir, "qmp.sock")
	cmd := exec.Command(qemu,
		"-accel", "tcg", "-m", "256", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:"+consoleLog,
		"-qmp", "unix:"+qmpSock+",server=on,wait=off",
		"-kernel", kernel, "-initrd", img.Initrd, "-append", cmdline,
		"-netdev", "tap,id=n0,fd=3",
		"-device", "virtio-net-pci,netdev=n0,mac="+mac,
		"-netdev", "tap,id=n1,fd=4",
		"-device", "virtio-net-pci,netdev=n1,mac="+mac2,
		"-device", "virtio-rng-pci",
	)
	cmd.ExtraFiles = tapFiles
	var qemuOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	bootStart := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(consoleLog)
			t.Logf("qemu output:\n%s\nconsole:\n%s", qemuOut.String(), tail(b, 4000))
		}
	})
	for _, f := range tapFiles {
		f.Close() // QEMU has its own copies now
	}
	tapFiles = nil

	readyCtx, readyCancel := context.WithTimeoutCause(ctx, 90*time.Second, errors.New("no ready marker within 90s"))
	defer readyCancel()
	go func() {
		select {
		case <-exited:
			readyCancel()
		case <-readyCtx.Done():
		}
	}()
	ready, err := WaitReady(readyCtx, consoleLog)
	if err != nil {
		t.Fatalf("boot: %v\nqemu: %s", err, qemuOut.String())
	}
	bootTime := time.Since(bootStart)
	t.Logf("boot to ready under TCG: %v (guest uptime %ss): %s", bootTime.Round(time.Millisecond), ready.Uptime, ready.Line)
	if ready.HostKey == nil {
		t.Fatal("no host key line on the console")
	}
	if ready.Hostname != "tbvm1" || !strings.Contains(ready.Fields["ip"], vmIP.String()) || ready.Fields["mac"] != mac {
		t.Errorf("ready line %q: want hostname tbvm1, ip %v, mac %s", ready.Line, vmIP, mac)
	}

	// SSH from the peer namespace, checking the host key the console showed.
	var conn net.Conn
	addr := net.JoinHostPort(vmIP.Addr().String(), "22")
	err = inNetns(peer, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 20*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial %s from the peer namespace: %v", addr, err)
	}
	sshStart := time.Now()
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(ready.HostKey),
		Timeout:         30 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	t.Logf("ssh handshake: %v", time.Since(sshStart).Round(time.Millisecond))

	out := sshRun(t, client, "ip addr", "")
	if !strings.Contains(out, vmIP.String()) || !strings.Contains(out, mac) {
		t.Errorf("ip addr lacks %v / %s:\n%s", vmIP, mac, out)
	}
	out = sshRun(t, client, "cat /proc/version", "")
	if !strings.Contains(out, "Linux version "+strings.SplitN(img.KernelVersion, "-", 2)[0]) {
		t.Errorf("/proc/version: %q (kernel %s)", out, img.KernelVersion)
	}
	t.Logf("guest: %s", strings.TrimSpace(out))
	out = sshRun(t, client, "ip route", "")
	if !strings.Contains(out, "default via "+peerIP.Addr().String()) || !strings.Contains(out, "10.99.0.0/16 via "+peerIP.Addr().String()) {
		t.Errorf("ip route lacks the default or static route:\n%s", out)
	}
	out = sshRun(t, client, "ip addr show eth1; cat /etc/resolv.conf", "")
	if !strings.Contains(out, "10.213.1.20/24") || !strings.Contains(out, mac2) || !strings.Contains(out, "nameserver "+peerIP.Addr().String()) {
		t.Errorf("eth1 (tb.net by MAC) or tb.dns not set up:\n%s", out)
	}
	out = sshRun(t, client, "ping -c 3 -W 5 "+peerIP.Addr().String(), "")
	if !strings.Contains(out, "3 packets received") {
		t.Errorf("ping from the VM:\n%s", out)
	}
	out = sshRun(t, client, "sh -s", "set -e\nhostname\necho script-ok\n")
	if out != "tbvm1\nscript-ok\n" {
		t.Errorf("piped script: %q", out)
	}
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var ee *ssh.ExitError
	if err := s.Run("exit 3"); !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Errorf("exit 3: %v", err)
	}
	s.Close()
	client.Close()

	// ACPI power button (what virsh shutdown sends): the guest powers off
	// and QEMU exits.
	downStart := time.Now()
	if err := qmp(qmpSock, "system_powerdown"); err != nil {
		t.Fatalf("qmp: %v", err)
	}
	select {
	case <-exited:
		t.Logf("ACPI power-off: QEMU exited after %v", time.Since(downStart).Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Fatal("guest did not power off within 60s of system_powerdown")
	}
}

func sshRun(t *testing.T, c *ssh.Client, cmd, stdin string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	if stdin != "" {
		s.Stdin = strings.NewReader(stdin)
	}
	if err := s.Run(cmd); err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", cmd, err, out.String(), errOut.String())
	}
	return out.String()
}

// randomPrefix is a unique link name prefix: "tbg" and 6 hex digits.
func randomPrefix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "tbg" + hex.EncodeToString(b)
}

// newNetns creates an anonymous network namespace, closed (and so
// destroyed with everything in it) at the end of the test, or when the
// process exits.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ns, err = netns.New()
		if rerr := netns.Set(orig); rerr != nil {
			// This thread is stuck in another namespace: leaving it
			// locked makes the runtime end it with this goroutine.
			errc <- fmt.Errorf("restore netns: %v", rerr)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNetns runs f on a thread switched into ns.
func inNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("restore netns: %v", err) // thread stays locked and ends
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func linkUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

// qmp sends one command to a QEMU QMP socket.
func qmp(sock, command string) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return err
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		b, _ := json.Marshal(map[string]string{"execute": cmd})
		if _, err := c.Write(append(b, '\n')); err != nil {
			return err
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return err
			}
			var resp struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Desc string `json:"desc"`
				} `json:"error"`
			}
			if json.Unmarshal(line, &resp) != nil {
				continue
			}
			if resp.Error != nil {
				return fmt.Errorf("%s: %s", cmd, resp.Error.Desc)
			}
			if resp.Return != nil {
				break
			}
		}
	}
	return nil
}
