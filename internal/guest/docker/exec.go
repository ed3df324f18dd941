package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// scriptDir is where setup scripts are copied inside the container.
const scriptDir = "/.testbedos"

// maxScript bounds a setup script copied into a container.
const maxScript = 16 << 20

// RunScript copies the script into the container (under /.testbedos) and
// runs it there through the exec API: directly if it is executable,
// otherwise with /bin/sh, with TESTBEDOS_DEPLOYMENT and TESTBEDOS_GUEST in
// its environment. Its stdout and stderr go line by line into log, prefixed
// with "[guest] ". A non-zero exit is an error naming the code.
func (d *Driver) RunScript(ctx context.Context, dep guest.Deployment, g *topology.Guest, ref string, log actlog.Log) error {
	s, err := spec(g)
	if err != nil {
		return err
	}
	body, info, err := guest.ReadFile(ctx, dep.Files, ref, maxScript)
	if err != nil {
		return fmt.Errorf("guest %s: script: %w", g.Name, err)
	}
	name := path.Base(ref)
	archive, err := scriptTar(name, body, int64(info.Mode().Perm()))
	if err != nil {
		return err
	}
	if _, err := d.cli.CopyToContainer(ctx, s.Container, client.CopyToContainerOptions{DestinationPath: "/", Content: archive}); err != nil {
		return fmt.Errorf("guest %s: copy script into container %s: %w", g.Name, s.Container, d.daemonErr(err))
	}
	inside := path.Join(scriptDir, name)
	argv := []string{inside}
	if info.Mode()&0o111 == 0 {
		argv = []string{"/bin/sh", inside}
	}
	out := log.Writer("[" + g.Name + "] ")
	defer out.Close()
	code, err := d.exec(ctx, s.Container, client.ExecCreateOptions{
		Cmd:        argv,
		Env:        []string{"TESTBEDOS_DEPLOYMENT=" + dep.Name, "TESTBEDOS_GUEST=" + g.Name},
		WorkingDir: scriptDir,
	}, nil, out, out)
	if err != nil {
		return fmt.Errorf("guest %s: setup script %s: %w", g.Name, name, err)
	}
	if code != 0 {
		return fmt.Errorf("guest %s: setup script %s exited with code %d", g.Name, name, code)
	}
	return nil
}

// scriptTar is a tar holding scriptDir and the script in it.
func scriptTar(name string, body []byte, mode int64) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := scriptDir[1:]
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + name, Mode: mode, Size: int64(len(body))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(body); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// Exec implements guest.Execer through the exec API.
func (d *Driver) Exec(ctx context.Context, dep guest.Deployment, g *topology.Guest, cmd guest.Command) (int, error) {
	s, err := spec(g)
	if err != nil {
		return -1, err
	}
	if len(cmd.Argv) == 0 {
		return -1, errors.New("exec: no command")
	}
	code, err := d.exec(ctx, s.Container, client.ExecCreateOptions{Cmd: cmd.Argv}, cmd.Stdin, cmd.Stdout, cmd.Stderr)
	if err != nil {
		return -1, fmt.Errorf("guest %s: exec %s: %w", g.Name, cmd.Argv[0], err)
	}
	return code, nil
}

// exec runs one command in the container, without a TTY, and returns its
// exit code. When ctx ends the command's process is killed.
func (d *Driver) exec(ctx context.Context, name string, opts client.ExecCreateOptions, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	opts.AttachStdout, opts.AttachStderr = true, true
	opts.AttachStdin = stdin != nil
	created, err := d.cli.ExecCreate(ctx, name, opts)
	if err != nil {
		return -1, d.daemonErr(err)
	}
	att, err := d.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return -1, d.daemonErr(err)
	}
	defer att.Close()
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, stdin)
			_ = att.CloseWrite()
		}()
	}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()
	select {
	case err = <-copied:
	case <-ctx.Done():
		d.killExec(created.ID)
		att.Close()
		<-copied
		return -1, ctx.Err()
	}
	if err != nil {
		return -1, fmt.Errorf("read output: %w", err)
	}
	res, err := d.cli.ExecInspect(context.WithoutCancel(ctx), created.ID, client.ExecInspectOptions{})
	if err != nil {
		return -1, d.daemonErr(err)
	}
	return res.ExitCode, nil
}

// killExec kills an exec's process, which the API cannot: it runs on this
// host, so its host PID is enough.
func (d *Driver) killExec(id string) {
	res, err := d.cli.ExecInspect(context.Background(), id, client.ExecInspectOptions{})
	if err == nil && res.Running && res.PID > 0 {
		_ = unix.Kill(res.PID, unix.SIGKILL)
	}
}

// Console implements guest.Consoler: /bin/sh in the container on a TTY.
func (d *Driver) Console(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Terminal, error) {
	s, err := spec(g)
	if err != nil {
		return nil, err
	}
	created, err := d.cli.ExecCreate(ctx, s.Container, client.ExecCreateOptions{
		Cmd: []string{"/bin/sh"}, TTY: true, Env: []string{"TERM=xterm"},
		AttachStdin: true, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return nil, fmt.Errorf("guest %s: console: %w", g.Name, d.daemonErr(err))
	}
	att, err := d.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: true})
	if err != nil {
		return nil, fmt.Errorf("guest %s: console: %w", g.Name, d.daemonErr(err))
	}
	return &terminal{d: d, id: created.ID, att: att}, nil
}

// terminal is a shell on a TTY inside a container.
type terminal struct {
	d    *Driver
	id   string
	att  client.ExecAttachResult
	once sync.Once
}

func (t *terminal) Read(p []byte) (int, error)  { return t.att.Reader.Read(p) }
func (t *terminal) Write(p []byte) (int, error) { return t.att.Conn.Write(p) }

// Resize implements guest.Terminal.
func (t *terminal) Resize(cols, rows uint16) error {
	_, err := t.d.cli.ExecResize(context.Background(), t.id, client.ExecResizeOptions{Height: uint(rows), Width: uint(cols)})
	return err
}

// Close ends the session and the shell with it.
func (t *terminal) Close() error {
	t.once.Do(func() {
		t.d.killExec(t.id)
		t.att.Close()
	})
	return nil
}
