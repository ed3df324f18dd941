package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/testbedos/testbedos/internal/topology"
)

// Deployment is what a driver knows of the deployment a guest belongs to, on
// the host the driver runs on.
type Deployment struct {
	// Name is the deployment's name: kernel object names derive from it.
	Name string
	// Files reaches the deployment's files on this host.
	Files Files
	// Ports, when set, puts the host ends of the guest's interfaces on
	// their switches (the host's network is not Linux bridges); nil: each
	// host end is a port of its interface's Linux bridge.
	Ports PortBinder
}

// PortBinder is a host network whose switches are not Linux bridges: the
// ovn backend makes a host end a port of the OVS integration bridge bound
// to the interface's logical port. Drivers create host ends on no bridge
// and hand them to BindPort.
type PortBinder interface {
	// BindPort puts the existing host end of ifc (ifc.HostName) on the
	// interface's switch.
	BindPort(ctx context.Context, ifc topology.Interface) error
	// GuestTxOffloadOff reports that the guest ends of veths need tx
	// checksum offload off: OVS's userspace datapath forwards packets with
	// partial checksums, and TCP through it stalls otherwise.
	GuestTxOffloadOff() bool
}

// BindPorts binds the host ends of ifaces through dep.Ports; nothing to do
// without one.
func (d Deployment) BindPorts(ctx context.Context, ifaces []topology.Interface) error {
	if d.Ports == nil {
		return nil
	}
	for _, ifc := range ifaces {
		if err := d.Ports.BindPort(ctx, ifc); err != nil {
			return fmt.Errorf("interface %s: %w", ifc.Name, err)
		}
	}
	return nil
}

// Bridged reports whether host ends are ports of Linux bridges.
func (d Deployment) Bridged() bool { return d.Ports == nil }

// GuestTxOffloadOff reports whether guest ends need tx checksum offload
// off.
func (d Deployment) GuestTxOffloadOff() bool { return d.Ports != nil && d.Ports.GuestTxOffloadOff() }

// WorkDir is the folder on this host of the deployment's working files:
// the server's own folder of what generate-artefacts made for it when
// Files has one (ProjectFiles with Generated set), else Files.WorkDir().
func (d Deployment) WorkDir() string {
	if p, ok := d.Files.(ProjectFiles); ok && p.Generated != "" {
		return filepath.Join(p.Generated, d.Name)
	}
	return d.Files.WorkDir()
}

// Files is how a driver reaches the files of its deployment on the host it
// runs on. On the main they are the project folder's; a client host is sent
// copies.
type Files interface {
	// Path returns a path on this host holding the deployment file ref, as
	// the state names it (a path inside the project folder). A ref outside
	// the project folder is refused.
	Path(ctx context.Context, ref string) (string, error)
	// WorkDir is a folder on this host for the deployment's per-guest working
	// files (on the main: <project>/artefacts).
	WorkDir() string
}

// Opener is Files that opens a deployment file itself, so that what is read
// is the file that was checked, not whatever a path names a moment later.
type Opener interface {
	// Open opens the regular file ref for reading.
	Open(ctx context.Context, ref string) (*os.File, error)
}

// OpenFile opens the regular file ref of files for reading: through Opener
// when files has it, else at the path Files hands out, refusing a symlink
// there, a FIFO or a device.
func OpenFile(ctx context.Context, files Files, ref string) (*os.File, error) {
	if o, ok := files.(Opener); ok {
		return o.Open(ctx, ref)
	}
	path, err := files.Path(ctx, ref)
	if err != nil {
		return nil, err
	}
	return topology.OpenProjectFile(filepath.Dir(path), filepath.Base(path))
}

// ReadFile reads the regular file ref of files whole, as OpenFile opens
// it, refusing one larger than limit bytes; it returns what it read and the
// file's information (its mode says whether it is executable).
func ReadFile(ctx context.Context, files Files, ref string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := OpenFile(ctx, files, ref)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if info.Size() > limit {
		return nil, nil, fmt.Errorf("file %s (%d bytes) %w of %d bytes", ref, info.Size(), topology.ErrTooLarge, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", ref, err)
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("file %s %w of %d bytes", ref, topology.ErrTooLarge, limit)
	}
	return data, info, nil
}

// ErrOutsideProject: a file ref leaves the deployment's project folder.
var ErrOutsideProject = errors.New("outside the project folder")

// ProjectFiles are the files of a project folder on this host.
type ProjectFiles struct {
	// Project is the absolute, symlink-free project folder.
	Project string
	// Generated is the server's folder of generated artefacts, one folder
	// per deployment (<data>/generated): the deployment's working files
	// live there, out of the project's reach. Empty: <project>/artefacts
	// (drivers' own tests).
	Generated string
}

// LocalDeployment is the deployment of st with the project folder of this
// host.
func LocalDeployment(st *topology.State) Deployment {
	return Deployment{Name: st.Deployment, Files: ProjectFiles{Project: st.Project}}
}

var _ Opener = ProjectFiles{}

// Open implements Opener: ref is opened without following a symlink out of
// the project folder, and only when it is a regular file.
func (p ProjectFiles) Open(ctx context.Context, ref string) (*os.File, error) {
	f, err := topology.OpenProjectFile(p.Project, p.abs(ref))
	if errors.Is(err, topology.ErrEscapes) {
		return nil, fmt.Errorf("file %s is %w %s", ref, ErrOutsideProject, p.Project)
	}
	return f, err
}

// Path implements Files: ref must be, after symlinks, a regular file inside
// the project folder.
func (p ProjectFiles) Path(ctx context.Context, ref string) (string, error) {
	ref = p.abs(ref)
	real, fi, err := p.resolve(ref)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("file %s is not a regular file: %w", ref, fs.ErrInvalid)
	}
	return real, nil
}

// abs is ref as an absolute path: a relative ref is in the project folder.
func (p ProjectFiles) abs(ref string) string {
	if filepath.IsAbs(ref) {
		return ref
	}
	return filepath.Join(p.Project, ref)
}

// resolve follows the symlinks of ref (absolute) and returns where it
// leads, which must lie inside the project folder, and what is there.
func (p ProjectFiles) resolve(ref string) (string, fs.FileInfo, error) {
	real, err := filepath.EvalSymlinks(ref)
	if err != nil {
		return "", nil, fmt.Errorf("file %s: %w", ref, err)
	}
	if !topology.Within(p.Project, real) {
		return "", nil, fmt.Errorf("file %s is %w %s", ref, ErrOutsideProject, p.Project)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", nil, fmt.Errorf("file %s: %w", ref, err)
	}
	return real, fi, nil
}

// WorkDir implements Files: without the deployment's name it can only be
// the project's artefacts folder; drivers ask Deployment.WorkDir.
func (p ProjectFiles) WorkDir() string { return filepath.Dir(topology.StatePath(p.Project)) }
