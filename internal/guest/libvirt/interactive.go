package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/api"
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
	var netErr net.Error
	if err != nil && (ctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout()) {
		// Nothing ran: not the deadline of a command that was killed.
		return 0, fmt.Errorf("guest %s did not answer over SSH before the timeout (%v): %w", g.Name, err, api.ErrGuestNotAnswering)
	}
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
