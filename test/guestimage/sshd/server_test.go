package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer runs a Server on 127.0.0.1:0 and returns a client logged in
// with an authorized key.
func startServer(t *testing.T, opts ...func(*Server)) (*Server, string, ssh.Signer) {
	t.Helper()
	client := newSigner(t)
	host, err := LoadOrCreateHostKey(filepath.Join(t.TempDir(), "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{AuthorizedKeys: []ssh.PublicKey{client.PublicKey()}, HostKey: host, Logf: t.Logf}
	for _, o := range opts {
		o(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String(), client
}

func dial(t *testing.T, addr string, key ssh.Signer, hostKey ssh.PublicKey) *ssh.Client {
	t.Helper()
	cb := ssh.InsecureIgnoreHostKey()
	if hostKey != nil {
		cb = ssh.FixedHostKey(hostKey)
	}
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: cb,
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func runCmd(t *testing.T, c *ssh.Client, cmd string, stdin io.Reader) (stdout, stderr string, err error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &o, &e, stdin
	err = s.Run(cmd)
	return o.String(), e.String(), err
}

func TestExec(t *testing.T) {
	srv, addr, key := startServer(t)
	c := dial(t, addr, key, srv.HostKey.PublicKey())

	out, _, err := runCmd(t, c, "echo hi", nil)
	if err != nil || out != "hi\n" {
		t.Fatalf("echo hi: %q, %v", out, err)
	}

	out, errOut, err := runCmd(t, c, "echo out; echo err >&2; exit 3", nil)
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Fatalf("exit 3: err = %v", err)
	}
	if out != "out\n" || errOut != "err\n" {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}

	_, _, err = runCmd(t, c, "false", nil)
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
		t.Fatalf("false: err = %v", err)
	}

	_, errOut, err = runCmd(t, c, "no-such-command-xyz", nil)
	if !errors.As(err, &ee) || ee.ExitStatus() != 127 || !strings.Contains(errOut, "no-such-command-xyz") {
		t.Fatalf("missing command: %v, stderr %q", err, errOut)
	}
}

func TestStdinScript(t *testing.T) {
	_, addr, key := startServer(t)
	c := dial(t, addr, key, nil)
	script := "set -e\nx=40\necho $((x + 2))\ncat /dev/null\necho done\n"
	out, _, err := runCmd(t, c, "sh -s", strings.NewReader(script))
	if err != nil || out != "42\ndone\n" {
		t.Fatalf("sh -s: %q, %v", out, err)
	}
	// Stdin reaches a plain command too.
	out, _, err = runCmd(t, c, "tr a-z A-Z", strings.NewReader("hello"))
	if err != nil || out != "HELLO" {
		t.Fatalf("tr: %q, %v", out, err)
	}
}

func TestShellAndEnv(t *testing.T) {
	_, addr, key := startServer(t)
	c := dial(t, addr, key, nil)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Setenv("TB_TEST", "v1"); err != nil {
		t.Fatal(err)
	}
	// A pty is refused; the client then goes on without one.
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Fatal("pty-req accepted")
	}
	var out bytes.Buffer
	s.Stdout = &out
	s.Stdin = strings.NewReader("echo $TB_TEST $HOME; exit 5\n")
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 5 {
		t.Fatalf("shell exit: %v", err)
	}
	if out.String() != "v1 /root\n" {
		t.Fatalf("shell output %q", out.String())
	}
}

func TestSignalAndBackground(t *testing.T) {
	_, addr, key := startServer(t, func(s *Server) { s.WaitDelay = 200 * time.Millisecond })
	c := dial(t, addr, key, nil)

	// A command killed by a signal reports exit-signal.
	_, _, err := runCmd(t, c, "kill -TERM $$", nil)
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Fatalf("kill -TERM: %v", err)
	}

	// A background process holding stdout does not hang the session.
	start := time.Now()
	out, _, err := runCmd(t, c, "sleep 30 & echo started", nil)
	if err != nil || out != "started\n" {
		t.Fatalf("background: %q, %v", out, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("background command held the session for %v", d)
	}

	// A "signal" request reaches the command.
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var o lockedBuffer
	s.Stdout = &o
	if err := s.Start("trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(o.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatal("command did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Signal(ssh.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 7 {
		t.Fatalf("after SIGINT: %v (output %q)", err, o.String())
	}
}

func TestAuthRejectsUnknownKey(t *testing.T) {
	_, addr, _ := startServer(t)
	_, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(newSigner(t))},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	if err == nil {
		t.Fatal("unknown key accepted")
	}
}

func TestOtherChannelsRejected(t *testing.T) {
	_, addr, key := startServer(t)
	c := dial(t, addr, key, nil)
	if _, _, err := c.OpenChannel("direct-tcpip", nil); err == nil {
		t.Fatal("direct-tcpip accepted")
	}
}

func TestHostKeyPersistsAndAuthorizedKeysParse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	a, err := LoadOrCreateHostKey(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateHostKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PublicKey().Marshal(), b.PublicKey().Marshal()) {
		t.Fatal("host key changed on reload")
	}
	pub, err := os.ReadFile(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := newSigner(t), newSigner(t)
	content := "# comment\n\n" + string(ssh.MarshalAuthorizedKey(k1.PublicKey())) +
		strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k2.PublicKey()))) + " user@host\n" + string(pub) + "# trailing\n"
	keys, err := ParseAuthorizedKeys([]byte(content))
	if err != nil || len(keys) != 3 {
		t.Fatalf("parsed %d keys, %v", len(keys), err)
	}
	if _, err := ParseAuthorizedKeys([]byte("garbage line\n")); err == nil {
		t.Fatal("garbage accepted")
	}
	if keys, err := ParseAuthorizedKeys(nil); err != nil || len(keys) != 0 {
		t.Fatalf("empty: %v %v", keys, err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
