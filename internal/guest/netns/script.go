package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

// outputGrace is how long output is still forwarded after the script has
// exited, for processes it left running in the background that still hold
// its stdout. Later output of theirs is read and dropped.
const outputGrace = time.Second

// scriptFD is the descriptor a script is run from in its process.
const scriptFD = 3

// RunScript runs script inside the guest's namespace: directly if it is
// executable, otherwise with /bin/sh. It runs in the script's folder with
// TESTBEDOS_DEPLOYMENT and TESTBEDOS_GUEST added to the environment, and its
// stdout and stderr go line by line into log, prefixed with "[guest] ".
// A non-zero exit is an error naming the code. Cancelling ctx kills the
// script's whole process group.
func (d *Driver) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, ref string, log actlog.Log) error {
	ns, err := namespaceOf(g)
	if err != nil {
		return err
	}
	// The script is opened once, as every project file is, and what runs
	// is that open file (the child's descriptor scriptFD), not whatever
	// its path names by the time the process starts.
	f, err := guest.OpenFile(ctx, dep.Files, ref)
	if err != nil {
		return fmt.Errorf("guest %s: script: %w", g.Name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("guest %s: script: %w", g.Name, err)
	}
	script := f.Name()
	nsfd, err := unix.Open(netnsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("guest %s: open namespace %s: %w", g.Name, ns, err)
	}
	defer unix.Close(nsfd)
	inCgroup, closeCgroup, err := d.guestCgroup(dep, g, log)
	if err != nil {
		return err
	}
	defer closeCgroup()

	if err := ctx.Err(); err != nil {
		return err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	prog := "/proc/self/fd/" + strconv.Itoa(scriptFD)
	argv := []string{prog}
	if info.Mode()&0o111 == 0 {
		argv = []string{"/bin/sh", prog}
	}
	cmd, err := startInNetns(nsfd, argv, func(c *exec.Cmd) {
		c.ExtraFiles = []*os.File{f} // the child's descriptor 3
		c.Dir = filepath.Dir(script)
		c.Env = append(os.Environ(),
			"TESTBEDOS_DEPLOYMENT="+dep.Name,
			"TESTBEDOS_GUEST="+g.Name)
		c.Stdout, c.Stderr = pw, pw // one stream, in the order written
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		inCgroup(c.SysProcAttr)
	})
	pw.Close() // the child has its copy
	if err != nil {
		pr.Close()
		return fmt.Errorf("guest %s: start %s: %w", g.Name, script, err)
	}

	out := log.Writer("[" + g.Name + "] ")
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, pr)
		copied <- err
	}()

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		werr = <-waited
	}

	// Forward what is still buffered; stop forwarding after a grace period
	// if background processes keep the pipe open.
	_ = pr.SetReadDeadline(time.Now().Add(outputGrace))
	cerr := <-copied
	out.Close()
	if errors.Is(cerr, os.ErrDeadlineExceeded) {
		// Keep reading (and dropping) their output so they do not die of
		// SIGPIPE; this ends when the last of them exits, at the latest
		// when Destroy kills what runs in the guest.
		go func() {
			_ = pr.SetReadDeadline(time.Time{})
			_, _ = io.Copy(io.Discard, pr)
			pr.Close()
		}()
	} else {
		pr.Close()
	}

	if werr != nil && ctx.Err() != nil {
		return fmt.Errorf("guest %s: script %s: %w", g.Name, script, ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(werr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("guest %s: script %s killed by signal %s", g.Name, script, ws.Signal())
		}
		return fmt.Errorf("guest %s: script %s exited with code %d", g.Name, script, exit.ExitCode())
	}
	if werr != nil {
		return fmt.Errorf("guest %s: script %s: %w", g.Name, script, werr)
	}
	return nil
}

// startInNetns starts argv on a thread inside the namespace nsfd; the child
// inherits the thread's namespace. A script without an interpreter line is
// retried with /bin/sh, and "text file busy" (the file was just written and
// another fork briefly holds it open) is retried a few times.
func startInNetns(nsfd int, argv []string, setup func(*exec.Cmd)) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	start := func() error {
		cmd = exec.Command(argv[0], argv[1:]...)
		setup(cmd)
		return cmd.Start()
	}
	enter := func() error {
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return nil
	}
	var err error
	for attempt := range 5 {
		err = namespace.OnThread(enter, start)
		switch {
		case errors.Is(err, syscall.ENOEXEC) && argv[0] != "/bin/sh":
			argv = append([]string{"/bin/sh"}, argv...)
		case errors.Is(err, syscall.ETXTBSY):
			time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
		default:
			return cmd, err
		}
	}
	return cmd, err
}

// guestCgroup prepares starting processes of the guest in its cgroup: set
// applies to a command's SysProcAttr, so the process is born there, before
// it can fork; done releases the cgroup's descriptor once the process has
// started. Every process a netns guest runs goes through it. A machine
// without cgroup2 runs them in the server's cgroup, which the log says.
func (d *Driver) guestCgroup(dep guest.Deployment, g *topology.Guest, log actlog.Log) (set func(*syscall.SysProcAttr), done func(), err error) {
	fd, err := d.cgroups.open(dep.Name, g.Name)
	switch {
	case errors.Is(err, errNoCgroup2):
		log.Printf("guest %s: %v: its processes run in the server's cgroup", g.Name, err)
		return func(*syscall.SysProcAttr) {}, func() {}, nil
	case err != nil:
		return nil, nil, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	set = func(a *syscall.SysProcAttr) { a.UseCgroupFD, a.CgroupFD = true, fd }
	return set, func() { unix.Close(fd) }, nil
}
