package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Exec implements guest.Execer: argv runs in the guest's namespace (the
// rest of its view of the host is the daemon's), in its own process group,
// which is killed when ctx ends.
func (d *Driver) Exec(ctx context.Context, dep guest.Deployment, g *topology.Guest, cmd guest.Command) (int, error) {
	if len(cmd.Argv) == 0 {
		return 0, fmt.Errorf("guest %s: exec: no command given", g.Name)
	}
	nsfd, err := d.openGuestNetns(g)
	if err != nil {
		return 0, err
	}
	defer unix.Close(nsfd)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	inCgroup, closeCgroup, err := d.interactiveCgroup(dep, g)
	if err != nil {
		return 0, err
	}
	defer closeCgroup()
	c, err := startInNetns(nsfd, cmd.Argv, func(c *exec.Cmd) {
		c.Dir = "/"
		c.Env = guestEnv(dep, g)
		c.Stdin, c.Stdout, c.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		inCgroup(c.SysProcAttr)
		// Output still held by background children must not keep Wait
		// waiting for ever once the command itself has exited.
		c.WaitDelay = outputGrace
	})
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
		// As a shell has it: the command ran as far as it could.
		writeTo(cmd.Stderr, "%s: command not found\n", cmd.Argv[0])
		return 127, nil
	case errors.Is(err, fs.ErrPermission):
		writeTo(cmd.Stderr, "%s: permission denied\n", cmd.Argv[0])
		return 126, nil
	case err != nil:
		return 0, fmt.Errorf("guest %s: start %s: %w", g.Name, cmd.Argv[0], err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		_ = unix.Kill(-c.Process.Pid, unix.SIGKILL)
		<-waited
		return -1, ctx.Err()
	}
	var exit *exec.ExitError
	switch {
	case errors.As(werr, &exit):
		return exit.ExitCode(), nil
	case errors.Is(werr, exec.ErrWaitDelay):
		return c.ProcessState.ExitCode(), nil
	case werr != nil:
		return 0, fmt.Errorf("guest %s: %s: %w", g.Name, cmd.Argv[0], werr)
	}
	return 0, nil
}

// Console implements guest.Consoler: an interactive shell (bash when the
// host has it, else /bin/sh) in the guest's namespace on a new pty. Closing
// the terminal hangs the shell up and kills its process group.
func (d *Driver) Console(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Terminal, error) {
	nsfd, err := d.openGuestNetns(g)
	if err != nil {
		return nil, err
	}
	defer unix.Close(nsfd)
	// The guest shares the host's files but is not the host's root: the
	// host user's startup files (~/.bashrc, /etc/bash.bashrc) are not run,
	// so nothing of the host's shell set-up (or a hang in it) reaches the
	// console.
	argv := []string{"/bin/sh", "-i"}
	if _, err := os.Stat("/bin/bash"); err == nil {
		argv = []string{"/bin/bash", "--norc", "--noprofile", "-i"}
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("guest %s: console: %w", g.Name, err)
	}
	defer tty.Close()
	inCgroup, closeCgroup, err := d.interactiveCgroup(dep, g)
	if err != nil {
		ptmx.Close()
		return nil, err
	}
	defer closeCgroup()
	c, err := startInNetns(nsfd, argv, func(c *exec.Cmd) {
		c.Dir = "/"
		c.Env = append(guestEnv(dep, g), "TERM=xterm-256color", "PS1="+g.Name+"# ")
		c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		inCgroup(c.SysProcAttr)
	})
	if err != nil {
		ptmx.Close()
		return nil, fmt.Errorf("guest %s: console: start %s: %w", g.Name, argv[0], err)
	}
	t := &ptyTerminal{File: ptmx, cmd: c}
	go func() { _ = c.Wait() }()
	return t, nil
}

// ptyTerminal is a shell on a pty.
type ptyTerminal struct {
	*os.File
	cmd  *exec.Cmd
	once sync.Once
}

// Resize implements guest.Terminal.
func (t *ptyTerminal) Resize(cols, rows uint16) error {
	return pty.Setsize(t.File, &pty.Winsize{Cols: cols, Rows: rows})
}

// Close ends the session: the shell's session is killed, the pty closed.
func (t *ptyTerminal) Close() error {
	var err error
	t.once.Do(func() {
		_ = unix.Kill(-t.cmd.Process.Pid, unix.SIGKILL)
		err = t.File.Close()
	})
	return err
}

func writeTo(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

// openGuestNetns opens the guest's namespace file.
func (d *Driver) openGuestNetns(g *topology.Guest) (int, error) {
	ns, err := namespaceOf(g)
	if err != nil {
		return -1, err
	}
	nsfd, err := unix.Open(netnsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("guest %s: open namespace %s: %w", g.Name, ns, err)
	}
	return nsfd, nil
}

// guestEnv is the environment of commands run in a guest.
func guestEnv(dep guest.Deployment, g *topology.Guest) []string {
	return append(os.Environ(), "TESTBEDOS_DEPLOYMENT="+dep.Name, "TESTBEDOS_GUEST="+g.Name)
}
