// Package netns is the netns guest kind: a lightweight, Mininet-style guest
// that is a named Linux network namespace (mounted under /run/netns exactly as
// "ip netns add" does, so "ip netns exec NAME …" works on it) with one veth
// pair per interface, the host end attached to the switch's bridge.
//
// Everything goes through netlink and a few system calls; nothing shells out
// to ip. All methods may run concurrently for different guests.
package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/topology"
)

// Options tune the driver; the zero value is fine.
type Options struct {
	// DestroyTimeout bounds how long Destroy waits for a guest's host-side
	// veths to disappear along with their guest ends; after it they are
	// deleted from the host side, one by one. Default 10 s.
	DestroyTimeout time.Duration
}

// Driver implements guest.Driver for netns guests.
type Driver struct {
	destroyTimeout time.Duration
	links          *links.Watcher
	reaper         vethReaper
	procs          procScanner
	cgroups        cgroupTree

	runDirMu    sync.Mutex
	runDirReady bool
}

var (
	_ guest.Driver  = (*Driver)(nil)
	_ guest.Statser = (*Driver)(nil)
	_ guest.Finder  = (*Driver)(nil)
)

// New returns a netns driver.
func New(opts Options) *Driver {
	if opts.DestroyTimeout <= 0 {
		opts.DestroyTimeout = 10 * time.Second
	}
	w := links.NewWatcher()
	return &Driver{destroyTimeout: opts.DestroyTimeout, links: w, reaper: vethReaper{links: w}}
}

// Kind is "netns".
func (d *Driver) Kind() string { return topology.KindNetns }

// Capabilities implements guest.Driver: netns guests run commands, have a
// console (a shell on a pty) and report stats (from their cgroup).
func (d *Driver) Capabilities() guest.Capabilities {
	return guest.Capabilities{Exec: true, Console: true, Stats: true, Find: true, Power: true}
}

// Exists reports whether the guest is complete: its namespace is mounted
// and every host-side veth is there.
func (d *Driver) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (bool, error) {
	ns, err := namespaceOf(g)
	if err != nil {
		return false, err
	}
	mounted, veths, err := inventory(ns, g)
	return mounted && len(veths) == len(g.Interfaces), err
}

// Find implements guest.Finder: a namespace or a veth carries no mark, so
// what there is of the guest, whole or in part, is Unmarked: the guest is
// this deployment's only when its record holds it.
func (d *Driver) Find(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Found, error) {
	ns, err := namespaceOf(g)
	if err != nil {
		return guest.Found{}, err
	}
	mounted, veths, err := inventory(ns, g)
	if err != nil {
		return guest.Found{}, err
	}
	var what []string
	if mounted {
		what = append(what, "namespace "+ns)
	}
	if len(veths) > 0 {
		what = append(what, "veths "+strings.Join(veths, ", "))
	}
	if len(what) == 0 {
		return guest.Found{}, nil
	}
	complete := mounted && len(veths) == len(g.Interfaces)
	return guest.Found{Presence: guest.Unmarked, What: strings.Join(what, " and "), Complete: complete}, nil
}

// inventory looks at what of the guest exists: whether its namespace is
// mounted, and which of its host-side veths are there.
func inventory(ns string, g *topology.Guest) (mounted bool, veths []string, err error) {
	mounted, err = namespace.Mounted(netnsPath(ns))
	if err != nil {
		return false, nil, err
	}
	for _, ifc := range g.Interfaces {
		idx, err := links.VethIndex(ifc.HostName)
		if err != nil {
			return false, nil, err
		}
		if idx > 0 {
			veths = append(veths, ifc.HostName)
		}
	}
	return mounted, veths, nil
}

// Create makes the namespace and its interfaces; a guest it returns without
// error is always one it made. A complete guest that is already there is an
// error wrapping fs.ErrExist (Exists tells first); remnants of an
// interrupted earlier run are removed first. On error nothing of the guest
// is left.
func (d *Driver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	err := d.create(ctx, dep, g, log)
	if err == nil {
		if _, cerr := d.cgroups.ensure(dep.Name, g.Name); cerr != nil && !errors.Is(cerr, errNoCgroup2) {
			err = fmt.Errorf("guest %s: %w", g.Name, cerr)
			if terr := d.Destroy(context.WithoutCancel(ctx), dep, g, log); terr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", terr))
			}
		}
	}
	return err == nil, err
}

func (d *Driver) create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (err error) {
	ns, err := namespaceOf(g)
	if err != nil {
		return err
	}
	ifaces, err := links.PlanGuestIfaces(g.Interfaces, links.Plan{Unbridged: !dep.Bridged(), GuestTxOff: dep.GuestTxOffloadOff()})
	if err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	mounted, veths, err := inventory(ns, g)
	if err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	if mounted && len(veths) == len(g.Interfaces) {
		return fmt.Errorf("guest %s: namespace %s: %w", g.Name, ns, fs.ErrExist)
	}
	if mounted || len(veths) > 0 {
		log.Printf("netns %s: removing remnants of an earlier run", ns)
		if err := d.teardown(ctx, ns, veths, log); err != nil {
			return fmt.Errorf("guest %s: remove remnants: %w", g.Name, err)
		}
	}
	if err := d.ensureRunDir(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	nsfd, h, err := namespace.Create(netnsPath(ns))
	if err != nil {
		return fmt.Errorf("guest %s: namespace %s: %w", g.Name, ns, err)
	}
	var made []string // host ends of the veths created so far
	defer func() {
		h.Close()
		unix.Close(nsfd)
		if err != nil {
			// Only what this call made: a link that was in the way
			// stays, and is not waited for.
			if terr := d.teardown(context.WithoutCancel(ctx), ns, made, log); terr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", terr))
			}
		}
	}()

	made, err = links.AttachGuest(h, nsfd, ifaces, ctx.Err)
	if err == nil {
		err = dep.BindPorts(ctx, g.Interfaces)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return err
}

// Destroy kills the processes left in the guest, removes its namespace and
// returns once the host-side veths are gone too. A guest that does not
// exist, or exists only in part, is fine.
func (d *Driver) Destroy(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	ns, err := namespaceOf(g)
	if err != nil {
		return err
	}
	// The cgroup first: its processes, wherever they are, are killed.
	if err := d.cgroups.remove(ctx, dep.Name, g.Name, log); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	if err := d.teardown(ctx, ns, hostVethNames(g.Interfaces), log); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return nil
}

// Stats implements guest.Statser from the guest's cgroup.
func (d *Driver) Stats(ctx context.Context, dep guest.Deployment, g *topology.Guest) (guest.Stats, error) {
	st, err := d.cgroups.stats(dep.Name, g.Name)
	if err != nil {
		return guest.Stats{}, fmt.Errorf("guest %s: %w", g.Name, err)
	}
	return st, nil
}

func hostVethNames(ifaces []topology.Interface) []string {
	names := make([]string, 0, len(ifaces))
	for _, ifc := range ifaces {
		names = append(names, ifc.HostName)
	}
	return names
}

// teardown removes the namespace ns and the veth pairs whose host ends are
// hostVeths, and returns once the host ends are gone.
func (d *Driver) teardown(ctx context.Context, ns string, hostVeths []string, log actlog.Log) error {
	// Without users the kernel frees a namespace in the background, and
	// its veths with it, but slowly (see vethReaper): the pairs are
	// deleted from the host side, starting now, while the namespace is
	// cleared. Processes still inside do not keep a veth alive.
	del, err := d.deleteVeths(hostVeths)
	if err != nil {
		return err
	}
	defer del.close()
	nsfd, err := d.removeNamespace(ctx, ns, log)
	if err != nil {
		return err
	}
	err = del.wait(ctx, ns, d.destroyTimeout, log)
	d.reaper.hold(nsfd)
	return err
}

// removeNamespace unmounts the namespace ns and kills the processes in it.
// It returns a descriptor of the namespace (or -1 if none was mounted),
// which keeps the kernel from freeing it until closed.
func (d *Driver) removeNamespace(ctx context.Context, ns string, log actlog.Log) (nsfd int, err error) {
	path := netnsPath(ns)
	mounted, err := namespace.Mounted(path)
	if err != nil {
		return -1, err
	}
	if !mounted {
		// At most a stale mount point of an interrupted earlier run.
		return -1, namespace.Remove(path)
	}
	nsfd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			unix.Close(nsfd)
			nsfd = -1
		}
	}()
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return -1, fmt.Errorf("stat %s: %w", path, err)
	}
	id := nsID(st.Ino)
	// Unmount first: from then on no process can join the namespace by
	// name, so the processes found below are all there will be (plus
	// their children, which the rescans catch).
	if err := namespace.Remove(path); err != nil {
		return -1, err
	}
	killed, err := d.procs.killMembers(ctx, id)
	if killed > 0 {
		log.Printf("netns %s: killed %d processes still running inside", ns, killed)
	}
	if err != nil {
		return -1, fmt.Errorf("stop processes in %s: %w", ns, err)
	}
	return nsfd, nil
}

// vethDeletion is the deletion of one guest's veths, under way.
type vethDeletion struct {
	present []string // host ends that were there
	gone    *links.Gone
	result  <-chan error
}

// deleteVeths starts deleting those of names that are veths (which takes
// their peers with them).
func (d *Driver) deleteVeths(names []string) (*vethDeletion, error) {
	var (
		indexes []int
		del     vethDeletion
	)
	for _, n := range names {
		idx, err := links.VethIndex(n)
		if err != nil {
			return nil, err
		}
		if idx > 0 {
			indexes = append(indexes, idx)
			del.present = append(del.present, n)
		}
	}
	if len(indexes) == 0 {
		return &del, nil
	}
	// Watch before deleting, so no event is missed.
	del.gone = d.links.Expect(del.present...)
	del.result = d.reaper.reap(indexes, del.gone)
	return &del, nil
}

func (v *vethDeletion) close() {
	if v.gone != nil {
		v.gone.Close()
	}
}

// wait returns once the veths are gone. If the batched deletion failed, or
// they are still there after timeout, it deletes them one by one.
func (v *vethDeletion) wait(ctx context.Context, ns string, timeout time.Duration, log actlog.Log) error {
	if v.gone == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var werr error
	select {
	case <-v.gone.Done():
		return nil
	case err := <-v.result:
		if err == nil {
			// The request returns after the kernel has removed them;
			// make sure of it.
			werr = v.gone.Wait(wctx)
		} else {
			werr = err
		}
	case <-wctx.Done():
		werr = v.gone.Wait(wctx)
	}
	if werr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return werr
	}
	log.Printf("netns %s: host ends %v not deleted in a batch (%v); deleting them one by one", ns, v.present, werr)
	var errs []error
	for _, n := range v.present {
		idx, err := links.VethIndex(n)
		if err == nil && idx > 0 {
			err = links.Delete(n)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (d *Driver) ensureRunDir() error {
	d.runDirMu.Lock()
	defer d.runDirMu.Unlock()
	if d.runDirReady {
		return nil
	}
	if err := namespace.PrepareDir(); err != nil {
		return err
	}
	d.runDirReady = true
	return nil
}

func namespaceOf(g *topology.Guest) (string, error) {
	if g.Netns == nil || g.Netns.Namespace == "" {
		return "", fmt.Errorf("guest %s: no netns namespace in the state", g.Name)
	}
	ns := g.Netns.Namespace
	if ns == "." || ns == ".." || strings.ContainsAny(ns, "/\x00") {
		return "", fmt.Errorf("guest %s: invalid namespace name %q", g.Name, ns)
	}
	return ns, nil
}
