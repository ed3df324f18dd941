package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// signalNumbers are the exit statuses of commands killed by a signal, as a
// shell has them (128 + the signal's number).
var signalNumbers = map[ssh.Signal]int{
	ssh.SIGHUP: 1, ssh.SIGINT: 2, ssh.SIGQUIT: 3, ssh.SIGILL: 4, ssh.SIGABRT: 6,
	ssh.SIGFPE: 8, ssh.SIGKILL: 9, ssh.SIGSEGV: 11, ssh.SIGPIPE: 13, ssh.SIGALRM: 14, ssh.SIGTERM: 15,
}

// Exec implements guest.Execer: argv runs over SSH as root with the
// deployment's key (the guest's host key pinned), in the guest's login
// shell with the arguments quoted, so nothing of them is interpreted.
func (d *Driver) Exec(ctx context.Context, dep guest.Deployment, g *topology.Guest, cmd guest.Command) (int, error) {
	if len(cmd.Argv) == 0 {
		return 0, fmt.Errorf("guest %s: exec: no command given", g.Name)
	}
	client, err := d.Dial(ctx, dep, g)
	if err != nil {
		return 0, fmt.Errorf("guest %s: ssh: %w", g.Name, err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return 0, fmt.Errorf("guest %s: ssh session: %w", g.Name, err)
	}
	defer sess.Close()
	quoted := make([]string, len(cmd.Argv))
	for i, a := range cmd.Argv {
		quoted[i] = shellQuote(a)
	}
	line := fmt.Sprintf("TESTBEDOS_DEPLOYMENT=%s TESTBEDOS_GUEST=%s exec %s",
		shellQuote(dep.Name), shellQuote(g.Name), strings.Join(quoted, " "))
	sess.Stdin, sess.Stdout, sess.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	if err := sess.Start(line); err != nil {
		return 0, fmt.Errorf("guest %s: start %s: %w", g.Name, cmd.Argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		client.Close()
		<-done
		return -1, ctx.Err()
	}
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(werr, &exit) && exit.Signal() != "":
		if n, ok := signalNumbers[ssh.Signal(exit.Signal())]; ok {
			return 128 + n, nil
		}
		return 255, nil
	case errors.As(werr, &exit):
		return exit.ExitStatus(), nil
	case errors.As(werr, &missing):
		return 0, fmt.Errorf("guest %s: %s: the connection ended without an exit status", g.Name, cmd.Argv[0])
	case werr != nil:
		return 0, fmt.Errorf("guest %s: %s: %w", g.Name, cmd.Argv[0], werr)
	}
	return 0, nil
}

// Console implements guest.Consoler: a login shell over SSH on a remote
// pty (on plain pipes where the SSH server has no ptys). (The guest's serial port is written to a file, the console log the
// driver reads at boot, so libvirt's console stream has nothing to attach
// to.)
func (d *Driver) Console(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Terminal, error) {
	client, err := d.Dial(ctx, dep, g)
	if err != nil {
		return nil, fmt.Errorf("guest %s: ssh: %w", g.Name, err)
	}
	sess, err := client.NewSession()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("guest %s: ssh session: %w", g.Name, err)
	}
	fail := func(err error) (guest.Terminal, error) {
		sess.Close()
		client.Close()
		return nil, fmt.Errorf("guest %s: console: %w", g.Name, err)
	}
	// An SSH server without ptys (the tiny one of the test image) still
	// gives a shell on pipes: commands run, but nothing is echoed and the
	// size cannot be set.
	pty := sess.RequestPty("xterm-256color", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}) == nil
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	sess.Stderr = sess.Stdout
	if err := sess.Shell(); err != nil {
		return fail(err)
	}
	return &sshTerminal{client: client, sess: sess, in: stdin, out: stdout, pty: pty}, nil
}

// sshTerminal is a shell on a remote pty.
type sshTerminal struct {
	client *ssh.Client
	sess   *ssh.Session
	in     io.WriteCloser
	out    io.Reader
	pty    bool
	once   sync.Once
}

func (t *sshTerminal) Read(p []byte) (int, error)  { return t.out.Read(p) }
func (t *sshTerminal) Write(p []byte) (int, error) { return t.in.Write(p) }

// Resize implements guest.Terminal.
func (t *sshTerminal) Resize(cols, rows uint16) error {
	if !t.pty {
		return nil
	}
	return t.sess.WindowChange(int(rows), int(cols))
}

// Close ends the session and the connection.
func (t *sshTerminal) Close() error {
	t.once.Do(func() {
		t.sess.Close()
		t.client.Close()
	})
	return nil
}
