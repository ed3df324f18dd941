package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Server is a minimal SSH server for test guests: public-key auth only,
// "session" channels only, with "exec" and pty-less "shell" requests run
// through a shell. Every authenticated user runs commands as the server's
// own user (root in the guest).
type Server struct {
	// AuthorizedKeys are the keys allowed to log in. None: nobody can.
	AuthorizedKeys []ssh.PublicKey
	// HostKey identifies the server.
	HostKey ssh.Signer
	// Shell runs commands: Shell -c CMD for exec, Shell alone for shell.
	// Default /bin/sh.
	Shell string
	// Env is the base environment of commands. Default: a root PATH/HOME.
	Env []string
	// Dir is the working directory of commands. Default "/".
	Dir string
	// WaitDelay bounds how long, after a command exited, its output is
	// still relayed while something it started in the background keeps
	// stdout/stderr open. Default 2s; negative waits forever (OpenSSH's
	// behaviour).
	WaitDelay time.Duration
	// Logf logs connection-level events. Default: discard.
	Logf func(format string, args ...any)

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	closed bool
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

func (s *Server) config() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			m := key.Marshal()
			for _, k := range s.AuthorizedKeys {
				if bytes.Equal(k.Marshal(), m) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, fmt.Errorf("key %s not authorized for %q", ssh.FingerprintSHA256(key), meta.User())
		},
	}
	cfg.AddHostKey(s.HostKey)
	return cfg
}

// Serve accepts connections on ln until it fails or Close is called.
func (s *Server) Serve(ln net.Listener) error {
	if s.HostKey == nil {
		return errors.New("sshd: no host key")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()

	cfg := s.config()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return net.ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		go s.handleConn(c, cfg)
	}
}

// Close stops all Serve calls. Established sessions run on until their
// clients disconnect.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	return nil
}

func (s *Server) handleConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	// Bound the handshake so a silent peer cannot pin a goroutine.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		s.logf("sshd: %s: handshake: %v", c.RemoteAddr(), err)
		return
	}
	c.SetDeadline(time.Time{})
	s.logf("sshd: %s: user %q logged in", sc.RemoteAddr(), sc.User())
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		go s.handleSession(nc)
	}
}

// process is a command started for a session.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the command has been waited for
}

func (s *Server) handleSession(nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	var env []string
	var proc *process
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if err := ssh.Unmarshal(req.Payload, &kv); err != nil || kv.Name == "" || strings.ContainsRune(kv.Name, '=') {
				req.Reply(false, nil)
				continue
			}
			env = append(env, kv.Name+"="+kv.Value)
			req.Reply(true, nil)
		case "exec", "shell":
			if proc != nil {
				req.Reply(false, nil)
				continue
			}
			var args []string
			if req.Type == "exec" {
				var p struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &p); err != nil {
					req.Reply(false, nil)
					continue
				}
				args = []string{"-c", p.Command}
			}
			proc, err = s.start(ch, args, env)
			if err != nil {
				fmt.Fprintf(ch.Stderr(), "sshd: %v\n", err)
				req.Reply(false, nil)
				ch.Close()
				continue
			}
			req.Reply(true, nil)
		case "signal":
			var p struct{ Signal string }
			if proc == nil || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			sig, ok := signalByName[p.Signal]
			if ok {
				proc.signal(sig)
			}
			req.Reply(ok, nil)
		default:
			// pty-req, x11-req, subsystem, window-change, ...: unsupported.
			req.Reply(false, nil)
		}
	}
	// The channel is closed: by us once the command finished, or by the
	// client (or a dropped connection) earlier; then stop the command.
	if proc != nil {
		select {
		case <-proc.done:
		default:
			proc.signal(syscall.SIGKILL)
		}
	}
	ch.Close()
}

func (p *process) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	// Commands run in their own process group: signal all of it.
	syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (s *Server) start(ch ssh.Channel, args, clientEnv []string) (*process, error) {
	shell := s.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.Command(shell, args...)
	cmd.Env = append(append([]string{}, s.baseEnv()...), clientEnv...)
	cmd.Dir = s.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	switch {
	case s.WaitDelay == 0:
		cmd.WaitDelay = 2 * time.Second
	case s.WaitDelay > 0:
		cmd.WaitDelay = s.WaitDelay
	}
	// Stdin is copied by hand rather than through cmd.Stdin so that Wait
	// does not wait for a client that never sends EOF.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
		ch.CloseWrite()
		sendExit(ch, cmd.ProcessState)
		ch.Close()
	}()
	return p, nil
}

func (s *Server) baseEnv() []string {
	if s.Env != nil {
		return s.Env
	}
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"USER=root",
		"LOGNAME=root",
		"SHELL=/bin/sh",
	}
}

// sendExit reports how the command ended, per RFC 4254 6.10.
func sendExit(ch ssh.Channel, st *os.ProcessState) {
	if st == nil {
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{255}))
		return
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		name := "KILL"
		for n, s := range signalByName {
			if s == ws.Signal() {
				name = n
			}
		}
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Message    string
			Lang       string
		}{name, ws.CoreDump(), ws.Signal().String(), ""}))
		return
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(st.ExitCode())}))
}

// signalByName maps RFC 4254 signal names to signals.
var signalByName = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT,
	"ALRM": syscall.SIGALRM,
	"FPE":  syscall.SIGFPE,
	"HUP":  syscall.SIGHUP,
	"ILL":  syscall.SIGILL,
	"INT":  syscall.SIGINT,
	"KILL": syscall.SIGKILL,
	"PIPE": syscall.SIGPIPE,
	"QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV,
	"TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// ParseAuthorizedKeys parses authorized_keys content (one key a line,
// comments and blank lines allowed; options are ignored).
func ParseAuthorizedKeys(data []byte) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for len(bytes.TrimSpace(data)) > 0 {
		k, _, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			// Only comments/blank lines left, or a bad line.
			if onlyComments(data) {
				break
			}
			return keys, err
		}
		keys = append(keys, k)
		data = rest
	}
	return keys, nil
}

func onlyComments(data []byte) bool {
	for _, l := range bytes.Split(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

// LoadOrCreateHostKey reads an OpenSSH private key from path, or, when the
// file does not exist, generates an ed25519 key and writes it there (mode
// 0600) with its public half in path+".pub". An empty path generates a key
// that is not saved.
func LoadOrCreateHostKey(path string) (ssh.Signer, error) {
	if path != "" {
		data, err := os.ReadFile(path)
		if err == nil {
			return ssh.ParsePrivateKey(data)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return signer, nil
	}
	block, err := ssh.MarshalPrivateKey(priv, "testbedos-guest")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return nil, err
	}
	return signer, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
