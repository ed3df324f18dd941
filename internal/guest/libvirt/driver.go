// Package libvirt is the libvirt guest kind: a real virtual machine under
// QEMU, KVM where /dev/kvm really runs guests and TCG software emulation
// otherwise. It talks to libvirtd over its unix socket with the pure-Go
// go-libvirt client and writes every XML document with libvirtxml; nothing
// shells out to virsh or qemu-img.
//
// What a guest is made of:
//
//	<work>/libvirt/<guest>/domain.xml   the domain, written at generate-artefacts
//	<work>/libvirt/<guest>/seed.img     cloud_image: NoCloud seed (FAT, label CIDATA)
//	<work>/libvirt/<guest>/console.log  what the serial console printed (libvirt logs
//	                                    the pty it streams; truncated at each start)
//	<work>/libvirt/<guest>/ssh.sh       logs in to the guest by hand
//	<disks>/<deployment>/<guest>.qcow2  its disk: a volume of the transient storage
//	                                    pool tbos.<deployment>
//
// <work> is the server's own folder of the deployment's generated artefacts
// (<data>/generated/<deployment>; the project's artefacts/ gets a copy to
// read), <disks> the server's disks folder (<data>/disks), which QEMU's
// unprivileged user can enter. Nothing is read from the project's copy.
//
// Disks are libvirt storage volumes: a linked clone (qcow2 over the original
// as backing file, which is never written) of an existing_disk or of a
// cached cloud image, a full copy for create_deep_copy, and a blank qcow2
// for kernel and iso_guest guests, so that every guest can have internal
// snapshots (memory and disk) while it runs.
//
// The server reaches a guest over SSH on the IPv6 link-local address its
// first NIC derives from its MAC, through the switch's bridge (the bridge
// has a link-local address of its own as soon as it is up): this needs no
// address of the testbed's subnets on the host and no extra NIC in the
// guest. The guest's host key is pinned from its console (the
// TESTBEDOS-GUEST-HOSTKEY line of the test image), from the key
// generate-artefacts put in the cloud-init seed, or else on first use.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/images"
	"github.com/testbedos/testbedos/internal/topology"
)

// Domain types: the <domain type=…> of libvirt.
const (
	TypeAuto = "auto" // detect: kvm if a real boot under KVM works, else qemu
	TypeKVM  = "kvm"
	TypeQEMU = "qemu" // TCG software emulation
)

// Options configure the driver. Zero values take the defaults.
type Options struct {
	// Socket is libvirtd's socket. Default DefaultSocket.
	Socket string
	// DomainType is TypeAuto (default), TypeKVM or TypeQEMU.
	DomainType string
	// ProbeKernel is the kernel booted under KVM to find out whether KVM
	// works. Default: the newest /boot/vmlinuz-*. Without one, guests run
	// under TCG.
	ProbeKernel string
	// ProbeTimeout bounds the KVM test boot. Default 15 s: a kernel that
	// has not reached its root file system by then under KVM is no faster
	// than TCG.
	ProbeTimeout time.Duration
	// ImageCache holds downloaded cloud images. Default
	// /var/lib/testbedos/cache/images (the server passes <data
	// dir>/cache/images).
	ImageCache string
	// ImagesDir is the original's folder of named images
	// (<data>/images/<name>.img), taken in when a guest asks for the name.
	ImagesDir string
	// Images is the image cache to use; nil: one over ImageCache and
	// ImagesDir. The server shares its own with the /api/images routes.
	Images *images.Store
	// Instance identifies the server (its data folder's instance id); it
	// marks every domain the driver defines.
	Instance string
	// DisksDir holds the deployments' disks, one folder (and storage
	// pool) per deployment: <data dir>/disks in the server; empty:
	// <work>/libvirt/disks (drivers' own tests).
	DisksDir string
	// ReadyTimeout bounds the wait for a guest to be ready (SSH answers,
	// cloud-init done) when one boots alone; a deployment's
	// testbed_options.ready_timeout overrides it. Default 180 s. The
	// deadline grows with the number of guests booting at once per CPU.
	ReadyTimeout time.Duration
	// CPUs is the host's CPU count the deadline scales by; default
	// runtime.NumCPU().
	CPUs   int
	Logger *slog.Logger
}

// Driver implements guest.Driver, guest.ArtefactWriter and
// guest.Snapshotter for libvirt guests.
type Driver struct {
	opts Options
	log  *slog.Logger

	accel accelCache
	// poolLocks serialises the changes to a pool's volumes; copies the
	// source pools of deep copies.
	poolLocks keyedMutex
	copies    sync.Mutex
	images    *images.Store
	// boots counts the guests waiting to be ready now.
	boots bootCounter
}

var (
	_ guest.Driver         = (*Driver)(nil)
	_ guest.ArtefactWriter = (*Driver)(nil)
	_ guest.Snapshotter    = (*Driver)(nil)
	_ guest.Finder         = (*Driver)(nil)
)

// New returns a libvirt driver. It connects to libvirtd only when used.
func New(opts Options) *Driver {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.DomainType == "" {
		opts.DomainType = TypeAuto
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 15 * time.Second
	}
	if opts.ImageCache == "" {
		opts.ImageCache = "/var/lib/testbedos/cache/images"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 180 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CPUs <= 0 {
		opts.CPUs = runtime.NumCPU()
	}
	st := opts.Images
	if st == nil {
		st = images.New(images.Options{Dir: opts.ImageCache, Legacy: opts.ImagesDir, DisksDir: opts.DisksDir})
	}
	return &Driver{opts: opts, log: opts.Logger, images: st}
}

// Kind is "libvirt".
func (d *Driver) Kind() string { return topology.KindLibvirt }

// Capabilities implements guest.Driver: libvirt guests have snapshots and
// per-guest artefacts.
func (d *Driver) Capabilities() guest.Capabilities {
	return guest.Capabilities{Snapshots: true, Artefacts: true, Stats: true, Exec: true, Console: true, Find: true, Power: true}
}

// Exists reports whether the guest's domain is defined and running.
func (d *Driver) Exists(ctx context.Context, dep guest.Deployment, g *topology.Guest) (bool, error) {
	spec, err := specOf(g)
	if err != nil {
		return false, err
	}
	s, err := d.connect(ctx)
	if err != nil {
		return false, err
	}
	defer s.close()
	dom, err := s.DomainLookupByName(spec.Domain)
	if noDomain(err) {
		return false, nil
	}
	if err != nil {
		return false, s.err(fmt.Errorf("look up domain %s: %w", spec.Domain, err))
	}
	state, _, err := s.DomainGetState(dom, 0)
	if err != nil {
		return false, s.err(fmt.Errorf("domain %s: state: %w", spec.Domain, err))
	}
	return golibvirt.DomainState(state) == golibvirt.DomainRunning, nil
}

// Create makes the guest's disk, defines its domain from the domain.xml of
// generate-artefacts and starts it, then waits until the guest answers over
// SSH where the server can know it will (kernel and cloud_image guests,
// whose network and key it configures). A defined domain that is shut off
// is started again with its disk as it is, and created is false: nothing of
// it may be reverted. On error nothing of what Create made is left.
func (d *Driver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (created bool, err error) {
	spec, err := specOf(g)
	if err != nil {
		return false, err
	}
	p := d.depPaths(dep, g)
	dom, err := readDomainXML(p.domainXML)
	if err != nil {
		return false, err
	}
	s, err := d.connect(ctx)
	if err != nil {
		return false, err
	}
	defer s.close()

	if existing, err := s.DomainLookupByName(spec.Domain); err == nil {
		if f, err := d.verdict(s, dep, g, existing); err != nil || f.Presence == guest.Foreign {
			if err == nil {
				err = fmt.Errorf("guest %s: %s: %w", g.Name, f.What, guest.ErrForeign)
			}
			return false, err
		}
		return false, d.startExisting(ctx, s, dep, g, existing, log)
	} else if !noDomain(err) {
		return false, s.err(fmt.Errorf("look up domain %s: %w", spec.Domain, err))
	}
	if err := checkTTYPort(g); err != nil {
		return false, err
	}
	if err := d.define(ctx, s, dep, g, dom, log); err != nil {
		return false, err
	}
	return true, nil
}

// define makes the volume, defines and starts a new domain and waits for
// it; on error it removes all of that again.
func (d *Driver) define(ctx context.Context, s *session, dep guest.Deployment, g *topology.Guest, dom domainDoc, log actlog.Log) (err error) {
	spec, p := g.Libvirt, d.depPaths(dep, g)
	// The domain type (the first time a KVM probe boot of up to
	// ProbeTimeout) is found, over a connection of its own, while the
	// disk is made (the first time a download of the image).
	domType := d.domainTypeAsync(ctx, log)
	defer domType() // never leaves the probe running

	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := d.Destroy(cctx, dep, g, log); cerr != nil {
			log.Printf("    guest %s: clean-up after the failed create: %v", g.Name, cerr)
		}
	}()
	// Remnants of an interrupted run: volumes and a console log whose
	// host key line would be stale.
	if err := d.removeVolumes(ctx, s, dep, g); err != nil {
		return err
	}
	if err := os.Remove(p.console); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove old console log: %w", err)
	}
	pins, err := pinFiles(ctx, dep, spec, p)
	if err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	d.localize(dom, dep, g, p, pins)
	backing, err := d.createVolume(ctx, s, dep, g, pins, log)
	if err != nil {
		return err
	}
	t, err := domType()
	if err != nil {
		return err
	}
	setDomainType(dom, t)
	onPorts(dom, dep)
	xml, err := dom.Marshal()
	if err != nil {
		return fmt.Errorf("domain %s: %w", spec.Domain, err)
	}
	defined, err := s.DomainDefineXML(xml)
	if err != nil {
		return s.err(fmt.Errorf("define domain %s: %w", spec.Domain, err))
	}
	start := time.Now()
	if err := s.DomainCreate(defined); err != nil {
		return s.err(fmt.Errorf("start domain %s: %w%s", spec.Domain, err, permissionHint(err, dom, backing)))
	}
	if err := dep.BindPorts(ctx, g.Interfaces); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	log.Printf("    guest %s: domain %s started (%s, %d vCPU, %d MiB, %s boot)", g.Name, spec.Domain, describeType(t), spec.CPUs, spec.MemoryMB, spec.Boot)
	if !waitsForSSH(spec) {
		return nil
	}
	client, status, err := d.waitReady(ctx, s, dep, g, defined)
	if err != nil {
		return err
	}
	err = copyContext(ctx, client, g, p)
	client.Close()
	if err != nil {
		return err
	}
	log.Printf("    guest %s: ready after %.1f s: SSH at %s%s", g.Name, time.Since(start).Seconds(), sshAddr(g), cloudInitText(status))
	return nil
}

// startExisting starts a defined domain that is shut off.
func (d *Driver) startExisting(ctx context.Context, s *session, dep guest.Deployment, g *topology.Guest, dom golibvirt.Domain, log actlog.Log) error {
	state, _, err := s.DomainGetState(dom, 0)
	if err != nil {
		return s.err(fmt.Errorf("domain %s: state: %w", dom.Name, err))
	}
	if golibvirt.DomainState(state) == golibvirt.DomainRunning {
		return fmt.Errorf("domain %s: %w", dom.Name, fs.ErrExist)
	}
	// The pins of its project files go with a host reboot: again.
	if _, err := pinFiles(ctx, dep, g.Libvirt, d.depPaths(dep, g)); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	if err := s.DomainCreate(dom); err != nil {
		return s.err(fmt.Errorf("start domain %s: %w", dom.Name, err))
	}
	if err := dep.BindPorts(ctx, g.Interfaces); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	log.Printf("    guest %s: domain %s was defined but not running: started it with its disk as it was", g.Name, dom.Name)
	spec := g.Libvirt
	if !waitsForSSH(spec) {
		return nil
	}
	client, status, err := d.waitReady(ctx, s, dep, g, dom)
	if err != nil {
		return err
	}
	err = copyContext(ctx, client, g, d.depPaths(dep, g))
	client.Close()
	if err != nil {
		return err
	}
	log.Printf("    guest %s: ready: SSH at %s%s", g.Name, sshAddr(g), cloudInitText(status))
	return nil
}

// Destroy stops and undefines the domain and deletes its volume and what
// the server learnt about its host key. Idempotent. The artefacts of
// generate-artefacts (domain.xml, seed) and the console log stay.
func (d *Driver) Destroy(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) error {
	spec, err := specOf(g)
	if err != nil {
		return err
	}
	s, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	dom, err := s.DomainLookupByName(spec.Domain)
	var f guest.Found
	if err == nil {
		f, err = d.verdict(s, dep, g, dom)
	}
	switch {
	case noDomain(err):
	case err != nil:
		return s.err(fmt.Errorf("look up domain %s: %w", spec.Domain, err))
	case f.Presence == guest.Foreign:
		// Not ours: this guest is gone, the other one stays.
		log.Printf("    guest %s: %s: %v: left alone", g.Name, f.What, guest.ErrForeign)
	default:
		if err := s.DomainDestroyFlags(dom, golibvirt.DomainDestroyDefault); err != nil && !isCode(err, golibvirt.ErrOperationInvalid) && !noDomain(err) {
			return s.err(fmt.Errorf("stop domain %s: %w", spec.Domain, err))
		}
		flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
			golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata
		if err := s.DomainUndefineFlags(dom, flags); err != nil && !noDomain(err) {
			return s.err(fmt.Errorf("undefine domain %s: %w", spec.Domain, err))
		}
	}
	if err := d.removeVolumes(ctx, s, dep, g); err != nil {
		return err
	}
	p := d.depPaths(dep, g)
	if err := os.Remove(p.knownHosts); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := guest.Unpin(p.pinDir()); err != nil {
		return err
	}
	return d.releasePool(ctx, s, dep)
}

// waitsForSSH: the server configures the network and key of kernel and
// cloud_image guests, so it can wait for them; other guests bring their
// own configuration.
func waitsForSSH(spec *topology.LibvirtSpec) bool {
	return spec.Boot == topology.BootKernel || spec.Boot == topology.BootCloudImage
}

func specOf(g *topology.Guest) (*topology.LibvirtSpec, error) {
	if g.Kind != topology.KindLibvirt || g.Libvirt == nil || g.Libvirt.Domain == "" {
		return nil, fmt.Errorf("guest %s is not a resolved libvirt guest (kind %s): run generate-artefacts", g.Name, g.Kind)
	}
	return g.Libvirt, nil
}

// paths are the files of one guest.
type paths struct {
	artefacts  string // the deployment's working folder
	dir        string // <work>/libvirt/<guest>
	domainXML  string
	seed       string
	console    string
	knownHosts string // host key learnt on first use
	hostKey    string // host key made by generate-artefacts (cloud_image)
	contextTar string // cloud_image's context, packed by generate-artefacts
	sshHelper  string
	poolDir    string // <disks>/<deployment>
}

// depPaths are the files of guest g of dep on this host.
func (d *Driver) depPaths(dep guest.Deployment, g *topology.Guest) paths {
	return d.pathsOf(dep.WorkDir(), dep.Name, g)
}

// poolDir is the folder of the deployment's disks: its own folder under
// DisksDir, else under its working folder art.
func (d *Driver) poolDir(art, deployment string) string {
	if d.opts.DisksDir != "" {
		return filepath.Join(d.opts.DisksDir, deployment)
	}
	return filepath.Join(art, "libvirt", "disks")
}

// pathsOf: art is the deployment's working folder on this host.
func (d *Driver) pathsOf(art, deployment string, g *topology.Guest) paths {
	pool := d.poolDir(art, deployment)
	dir := filepath.Join(art, "libvirt", g.Name)
	return paths{
		artefacts:  art,
		dir:        dir,
		domainXML:  filepath.Join(dir, "domain.xml"),
		seed:       filepath.Join(dir, "seed.img"),
		console:    filepath.Join(dir, "console.log"),
		knownHosts: filepath.Join(dir, "known_hosts"),
		hostKey:    filepath.Join(dir, "ssh_host_ed25519_key"),
		contextTar: filepath.Join(dir, "context.tar"),
		sshHelper:  filepath.Join(dir, "ssh.sh"),
		poolDir:    pool,
	}
}

func describeType(t string) string {
	if t == TypeQEMU {
		return "qemu/TCG"
	}
	return t
}

// permissionHint explains a start that failed on file permissions: QEMU
// runs as an unprivileged user (libvirt-qemu on Debian) that must be able
// to walk into every folder above the files it opens.
func permissionHint(err error, dom domainDoc, more ...string) string {
	if !strings.Contains(err.Error(), "Permission denied") {
		return ""
	}
	for _, f := range append(dom.files(), more...) {
		if f == "" {
			continue
		}
		if herr := images.CheckReadable(f); herr != nil && !errors.Is(herr, fs.ErrNotExist) {
			return " (" + herr.Error() + ")"
		}
	}
	for _, f := range dom.files() {
		for dir := filepath.Dir(f); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			info, serr := os.Stat(dir)
			if serr == nil && info.Mode().Perm()&0o001 == 0 {
				return fmt.Sprintf(" (QEMU runs as an unprivileged user and cannot enter %s, mode %s: make it searchable, e.g. chmod o+x %s, or keep the project elsewhere)",
					dir, strconv.FormatUint(uint64(info.Mode().Perm()), 8), dir)
			}
		}
	}
	return ""
}
