// Package docker is the docker guest kind: a container made through the
// Docker Engine API (the Go client, never the docker command) with no
// network of Docker's own. Its interfaces are veth pairs on our bridges,
// made by package links inside the container's network namespace exactly as for a
// netns guest.
//
// The container is named as the state says (tbos.<deployment>.<guest>) and
// found by that name; its labels record the deployment and guest for people
// looking at docker ps, and are never used to decide what to delete.
package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/topology"
)

// Labels set on every container.
const (
	LabelDeployment = "org.testbedos.deployment"
	LabelGuest      = "org.testbedos.guest"
	// LabelServer is the instance id of the server that made the
	// container: two servers on one host never take each other's.
	LabelServer = "org.testbedos.server"
)

// ErrNoImage: the daemon has not got the guest's image (and the YAML does
// not allow pulling it).
var ErrNoImage = errors.New("image not found")

// ErrDaemon: dockerd cannot be reached.
var ErrDaemon = errors.New("dockerd is not reachable")

// Options tune the driver; the zero value talks to the daemon DOCKER_HOST
// names, or the default socket.
type Options struct {
	// Host is dockerd's address (unix:///var/run/docker.sock); "" takes
	// DOCKER_HOST or the default.
	Host string
	// Instance identifies the server (its data folder's instance id); it
	// labels every container the driver makes.
	Instance string
	// MountsDir holds the private binds of volume sources, one folder per
	// deployment and guest (<data>/mounts). Default: testbedos-mounts in
	// the system's temporary folder.
	MountsDir string
}

// Driver implements guest.Driver, guest.Execer and guest.Consoler for docker
// guests.
type Driver struct {
	cli       *client.Client
	links     *links.Watcher
	instance  string
	mountsDir string
}

var (
	_ guest.Driver   = (*Driver)(nil)
	_ guest.Execer   = (*Driver)(nil)
	_ guest.Consoler = (*Driver)(nil)
	_ guest.Finder   = (*Driver)(nil)
)

// New returns a docker driver. It does not contact the daemon: a host
// without dockerd still starts, and its docker guests fail naming it.
func New(opts Options) (*Driver, error) {
	cli, err := newClient(opts.Host)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if opts.MountsDir == "" {
		opts.MountsDir = filepath.Join(os.TempDir(), "testbedos-mounts")
	}
	return &Driver{cli: cli, links: links.NewWatcher(), instance: opts.Instance, mountsDir: opts.MountsDir}, nil
}

// Close releases the client's connections.
func (d *Driver) Close() error { return d.cli.Close() }

// Kind is "docker".
func (d *Driver) Kind() string { return topology.KindDocker }

// Capabilities implements guest.Driver: containers run commands, have a
// shell as their console and report their resource use.
func (d *Driver) Capabilities() guest.Capabilities {
	return guest.Capabilities{Exec: true, Console: true, Stats: true, NetnsPath: true, Find: true, Power: true}
}

// daemonErr makes a failure to reach dockerd say so.
func (d *Driver) daemonErr(err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%w at %s (is it running?): %w", ErrDaemon, d.cli.DaemonHost(), err)
	}
	return err
}

func spec(g *topology.Guest) (*topology.DockerSpec, error) {
	if g.Docker == nil || g.Docker.Container == "" {
		return nil, fmt.Errorf("guest %s: no docker container in the state", g.Name)
	}
	return g.Docker, nil
}

// inspect returns the container, or ok false when there is none.
func (d *Driver) inspect(ctx context.Context, name string) (c container.InspectResponse, ok bool, err error) {
	res, err := d.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return c, false, nil
	case err != nil:
		return c, false, fmt.Errorf("inspect container %s: %w", name, d.daemonErr(err))
	}
	return res.Container, true, nil
}

// Exists reports whether the guest is complete: its container runs and
// every host-side veth is there.
func (d *Driver) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (bool, error) {
	s, err := spec(g)
	if err != nil {
		return false, err
	}
	c, ok, err := d.inspect(ctx, s.Container)
	if err != nil || !ok || c.State == nil || !c.State.Running {
		return false, err
	}
	veths, err := presentVeths(g)
	return len(veths) == len(g.Interfaces), err
}

// pinner is where guest g's volume sources are pinned.
func (d *Driver) pinner(dep guest.Deployment, g *topology.Guest) pinner {
	return pinner{dir: d.mountsDir, deployment: dep.Name, guest: g.Name}
}

// Find implements guest.Finder: a container of the guest's name in any
// state is ours when labelled with this deployment, guest and server,
// foreign otherwise; veths alone carry no mark.
func (d *Driver) Find(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Found, error) {
	s, err := spec(g)
	if err != nil {
		return guest.Found{}, err
	}
	c, ok, err := d.inspect(ctx, s.Container)
	if err != nil {
		return guest.Found{}, err
	}
	veths, err := presentVeths(g)
	if err != nil {
		return guest.Found{}, err
	}
	if ok {
		f := d.verdict(dep, g, c)
		f.Complete = c.State != nil && c.State.Running && len(veths) == len(g.Interfaces)
		return f, nil
	}
	if len(veths) == 0 {
		return guest.Found{}, nil
	}
	return guest.Found{Presence: guest.Unmarked, What: "veths " + strings.Join(veths, ", ")}, nil
}

// verdict tells whether container c, in guest g's place, is ours.
func (d *Driver) verdict(dep guest.Deployment, g *topology.Guest, c container.InspectResponse) guest.Found {
	what := "container " + strings.TrimPrefix(c.Name, "/")
	if c.State != nil && !c.State.Running {
		what = fmt.Sprintf("%s %s", c.State.Status, what)
	}
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	switch server := labels[LabelServer]; {
	case labels[LabelDeployment] != dep.Name || labels[LabelGuest] != g.Name:
		return guest.Found{Presence: guest.Foreign, What: fmt.Sprintf("%s, not labelled as guest %s of deployment %s", what, g.Name, dep.Name)}
	case server == "" && d.instance != "":
		// Made before servers labelled their containers: the record
		// decides.
		return guest.Found{Presence: guest.Unmarked, What: what}
	case server != d.instance:
		return guest.Found{Presence: guest.Foreign, What: what + " of another server (another data folder)"}
	}
	return guest.Found{Presence: guest.Ours, What: what}
}

func presentVeths(g *topology.Guest) ([]string, error) {
	var out []string
	for _, ifc := range g.Interfaces {
		idx, err := links.VethIndex(ifc.HostName)
		if err != nil {
			return nil, err
		}
		if idx > 0 {
			out = append(out, ifc.HostName)
		}
	}
	return out, nil
}

// Create makes the container, starts it and gives it its interfaces. A
// complete guest already there is left as it is (created false); remnants
// of an interrupted run (a container that is not running, missing veths)
// are removed first. On error nothing of what it made is left.
// createTimeout bounds a container create, which is not cancelled with
// the action.
const createTimeout = time.Minute

func (d *Driver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	s, err := spec(g)
	if err != nil {
		return false, err
	}
	if ok, err := d.Exists(ctx, dep, g); err != nil || ok {
		return false, err
	}
	ifaces, err := links.PlanGuestIfaces(g.Interfaces, links.Plan{Unbridged: !dep.Bridged(), GuestTxOff: dep.GuestTxOffloadOff()})
	if err != nil {
		return false, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	if err := d.teardown(ctx, dep, g, s, log, true); err != nil {
		return false, fmt.Errorf("guest %s: remove remnants: %w", g.Name, err)
	}
	if err := d.ensureImage(ctx, s, log); err != nil {
		return false, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	cfg, host, err := containerConfig(ctx, dep, g, s, d.pinner(dep, g).pin)
	if err != nil {
		// Sources pinned before the one that failed.
		err = errors.Join(err, d.pinner(dep, g).unpin())
		return false, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	cfg.Labels[LabelServer] = d.instance
	if err := ctx.Err(); err != nil {
		return false, err
	}
	// The create itself is not cancelled: dockerd finishes a create whose
	// request was cancelled, possibly after the clean-up below looked, and
	// the container would be left. It is quick; the start is cancellable.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	_, err = d.cli.ContainerCreate(cctx, client.ContainerCreateOptions{Name: s.Container, Config: cfg, HostConfig: host})
	cancel()
	if err != nil {
		err = fmt.Errorf("guest %s: create container %s: %w", g.Name, s.Container, d.daemonErr(err))
	} else {
		err = d.start(ctx, dep, g, s, ifaces)
	}
	if err != nil {
		// Also after a failed create: a cancelled request may still have
		// made the container. Only our name is removed, never another.
		if terr := d.teardown(context.WithoutCancel(ctx), dep, g, s, log, false); terr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", terr))
		}
		return false, err
	}
	log.Printf("docker %s: container %s (%s) up with %d interfaces", g.Name, s.Container, s.Image, len(ifaces))
	return true, nil
}

// start starts the created container and plugs its interfaces in.
func (d *Driver) start(ctx context.Context, dep guest.Deployment, g *topology.Guest, s *topology.DockerSpec, ifaces []links.GuestIface) error {
	if _, err := d.cli.ContainerStart(ctx, s.Container, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("guest %s: start container %s: %w", g.Name, s.Container, d.daemonErr(err))
	}
	if len(ifaces) == 0 {
		return nil
	}
	pid, err := d.pid(ctx, s.Container)
	if err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	nsfd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		// Most likely the command exited in the meantime: say so.
		if _, perr := d.pid(ctx, s.Container); perr != nil {
			err = perr
		}
		return fmt.Errorf("guest %s: network namespace of container %s: %w", g.Name, s.Container, err)
	}
	defer unix.Close(nsfd)
	h, err := netlink.NewHandleAt(netns.NsHandle(nsfd))
	if err != nil {
		return fmt.Errorf("guest %s: netlink in container %s: %w", g.Name, s.Container, err)
	}
	defer h.Close()
	if _, err := links.AttachGuest(h, nsfd, ifaces, ctx.Err); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	if err := dep.BindPorts(ctx, g.Interfaces); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	// A command that exited while the interfaces went in leaves a
	// container that is not there in any useful sense.
	if _, err := d.pid(ctx, s.Container); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return nil
}

// pid is the host PID of the container's first process, which must run.
func (d *Driver) pid(ctx context.Context, name string) (int, error) {
	c, ok, err := d.inspect(ctx, name)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, fmt.Errorf("container %s vanished after start", name)
	case c.State == nil || !c.State.Running || c.State.Pid <= 0:
		code := 0
		if c.State != nil {
			code = c.State.ExitCode
		}
		return 0, fmt.Errorf("container %s is not running right after start (exit code %d): its command must keep running, e.g. command: [sleep, infinity]", name, code)
	}
	return c.State.Pid, nil
}

// ensureImage checks the daemon has the image, pulling it only when the
// YAML says pull: true.
func (d *Driver) ensureImage(ctx context.Context, s *topology.DockerSpec, log actlog.Log) error {
	_, err := d.cli.ImageInspect(ctx, s.Image)
	switch {
	case err == nil:
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("image %s: %w", s.Image, d.daemonErr(err))
	case !s.Pull:
		return fmt.Errorf("image %s not found on this host's dockerd; build or load it, or set pull: true: %w", s.Image, ErrNoImage)
	}
	log.Printf("docker: pulling image %s (pull: true)", s.Image)
	resp, err := d.cli.ImagePull(ctx, s.Image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull image %s: %w", s.Image, d.daemonErr(err))
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pull image %s: %w", s.Image, err)
	}
	return nil
}

// Destroy removes the guest's veths and its container. A guest that does
// not exist, or exists only in part, is fine. A container of its name that
// another deployment or server made is left alone, with its veths: this
// guest is gone.
func (d *Driver) Destroy(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	s, err := spec(g)
	if err != nil {
		return err
	}
	err = d.teardown(ctx, dep, g, s, log, false)
	if errors.Is(err, guest.ErrForeign) {
		log.Printf("docker %s: %v: left alone", g.Name, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return nil
}

// vethTimeout bounds how long teardown waits for the kernel to remove a
// removed container's veths with its namespace before it deletes them
// itself, one by one (which costs about 30 ms each).
const vethTimeout = 5 * time.Second

// teardown removes the container, by name, and returns once the host ends
// of its veths are gone: the kernel removes them with the container's
// namespace; those still there after vethTimeout, or of a guest without a
// container, are deleted. A container that is not ours is refused
// (guest.ErrForeign) before anything is removed.
func (d *Driver) teardown(ctx context.Context, dep guest.Deployment, g *topology.Guest, s *topology.DockerSpec, log actlog.Log, remnants bool) error {
	c, ok, err := d.inspect(ctx, s.Container)
	if err != nil {
		return err
	}
	if ok {
		if f := d.verdict(dep, g, c); f.Presence == guest.Foreign {
			return fmt.Errorf("%s: %w", f.What, guest.ErrForeign)
		}
	}
	veths, err := presentVeths(g)
	if err != nil {
		return err
	}
	// Watch before removing, so no event is missed.
	gone := d.links.Expect(veths...)
	defer gone.Close()
	var errs []error
	_, err = d.cli.ContainerRemove(ctx, s.Container, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	waited := false
	if err == nil && len(veths) > 0 {
		wctx, cancel := context.WithTimeout(ctx, vethTimeout)
		waited = gone.Wait(wctx) == nil
		cancel()
	}
	if !waited {
		// No container took them away (or not in time): ours to delete.
		for _, v := range veths {
			errs = append(errs, links.Delete(v))
		}
	}
	switch {
	case cerrdefs.IsNotFound(err):
		if remnants && len(veths) > 0 {
			log.Printf("docker %s: removed veths %s left by an earlier run", g.Name, strings.Join(veths, ", "))
		}
	case err != nil:
		errs = append(errs, fmt.Errorf("remove container %s: %w", s.Container, d.daemonErr(err)))
	case remnants:
		log.Printf("docker %s: removed container %s left incomplete by an earlier run", g.Name, s.Container)
	}
	if err == nil || cerrdefs.IsNotFound(err) {
		// The container no longer uses its pinned volume sources.
		errs = append(errs, d.pinner(dep, g).unpin())
	}
	return errors.Join(errs...)
}

// sortedEnv turns a map into KEY=value lines, sorted for stable configs.
func sortedEnv(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
