package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Volumes of docker guests on a client host: at create, the main walks each
// volume source (a file or a folder beneath the project folder, opened
// checked as on the main) and pushes its files content-addressed, as any
// other file; the request carries the source's manifest. The client makes a
// copy of the source from its cache in the guest's working folder
// (<work>/volumes/<guest>/<sha256 of the source>), and its driver
// bind-mounts that copy from a descriptor opened beneath it, as on the
// main. What the guest writes there stays on the client: the copy is the
// guest's, removed when the guest is.

// VolumeEntry is one entry of a volume source: a file (by sha256), a
// folder or a symbolic link, at Path inside the source ("" is the source
// itself).
type VolumeEntry struct {
	Path   string      `json:"path,omitempty"`
	SHA256 string      `json:"sha256,omitempty"`
	Dir    bool        `json:"dir,omitempty"`
	Link   string      `json:"link,omitempty"`
	Mode   fs.FileMode `json:"mode"`
}

// pushVolumes pushes the volume sources of a docker guest and returns
// their manifests by source.
func (p *proxyDriver) pushVolumes(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (map[string][]VolumeEntry, error) {
	if g.Docker == nil || len(g.Docker.Volumes) == 0 {
		return nil, nil
	}
	rf, ok := dep.Files.(*remoteFiles)
	if !ok || rf.h != p.h {
		return nil, fmt.Errorf("the deployment's files are not those of host %s", p.h.Name())
	}
	out := map[string][]VolumeEntry{}
	for _, v := range g.Docker.Volumes {
		entries, err := rf.pushVolume(ctx, v.Source, log)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Target, err)
		}
		out[v.Source] = entries
	}
	return out, nil
}

// pushVolume walks the source (opened beneath the project folder; links
// are not followed) and pushes its files.
func (f *remoteFiles) pushVolume(ctx context.Context, source string, log actlog.Log) ([]VolumeEntry, error) {
	root, err := guest.ProjectFiles{Project: f.project}.OpenMount(ctx, source)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// The descriptor's folder, whatever replaces the path meanwhile.
	top := fmt.Sprintf("/proc/self/fd/%d/", root.Fd())
	var entries []VolumeEntry
	err = filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(top, path)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		e, err := f.volumeEntry(ctx, source, rel, path, d, log)
		if err == nil {
			entries = append(entries, e)
		}
		return err
	})
	if err != nil {
		// A single file: the walk of "<fd>/" fails as it is not a folder.
		if fi, serr := root.Stat(); serr == nil && fi.Mode().IsRegular() {
			hash, _, perr := f.push(ctx, source, log)
			return []VolumeEntry{{SHA256: hash, Mode: fi.Mode().Perm()}}, perr
		}
		return nil, err
	}
	return entries, nil
}

func (f *remoteFiles) volumeEntry(ctx context.Context, source, rel, path string, d fs.DirEntry, log actlog.Log) (VolumeEntry, error) {
	fi, err := d.Info()
	if err != nil {
		return VolumeEntry{}, err
	}
	e := VolumeEntry{Path: rel, Mode: fi.Mode().Perm()}
	switch {
	case d.IsDir():
		e.Dir = true
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Link, err = os.Readlink(path)
	case fi.Mode().IsRegular():
		e.SHA256, _, err = f.push(ctx, filepath.Join(source, rel), log)
	default:
		err = fmt.Errorf("%s is neither a file, a folder nor a link", filepath.Join(source, rel))
	}
	return e, err
}

// volumeRoot is where the client keeps its copy of a guest's volume
// source.
func volumeRoot(work, guestName, source string) string {
	sum := sha256.Sum256([]byte(source))
	return filepath.Join(volumesDir(work, guestName), hex.EncodeToString(sum[:8]))
}

func volumesDir(work, guestName string) string { return filepath.Join(work, "volumes", guestName) }

// volumeFiles are cachedFiles that also hand out the copies of a guest's
// volume sources (guest.MountFiles).
type volumeFiles struct {
	cachedFiles
	guest   string
	volumes map[string][]VolumeEntry
}

var _ guest.MountFiles = volumeFiles{}

// OpenMount implements guest.MountFiles: it makes the copy of the source
// afresh and opens it beneath the guest's volumes folder.
func (v volumeFiles) OpenMount(ctx context.Context, ref string) (*os.File, error) {
	entries, ok := v.volumes[ref]
	if !ok {
		return nil, fmt.Errorf("volume source %s was not sent to this host: %w", ref, fs.ErrNotExist)
	}
	root := volumeRoot(v.work, v.guest, ref)
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return nil, err
	}
	// The copy is made through the guest's volumes folder opened as a
	// root: no entry, whatever links came before it, lands outside.
	dir, err := os.OpenRoot(filepath.Dir(root))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	for _, e := range entries {
		if err := v.make(dir, filepath.Base(root), e); err != nil {
			return nil, fmt.Errorf("volume source %s: %w", ref, err)
		}
	}
	return topology.OpenBeneath(volumesDir(v.work, v.guest), root, unix.O_PATH)
}

// make makes one entry of the copy called top in dir.
func (v volumeFiles) make(dir *os.Root, top string, e VolumeEntry) error {
	if e.Path != "" && !filepath.IsLocal(e.Path) {
		return fmt.Errorf("entry %q is not inside the source", e.Path)
	}
	name := filepath.Join(top, e.Path)
	switch {
	case e.Dir:
		if err := dir.Mkdir(name, 0o755); err != nil {
			return err
		}
		return dir.Chmod(name, e.Mode.Perm())
	case e.Link != "":
		return dir.Symlink(e.Link, name)
	}
	if ok, err := v.cache.has(e.SHA256); err != nil || !ok {
		return fmt.Errorf("%s (sha256 %s) is not in this host's cache: %w", e.Path, e.SHA256, fs.ErrNotExist)
	}
	src, err := os.Open(v.cache.path(e.SHA256))
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.Mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return dir.Chmod(name, e.Mode.Perm()) // past the umask
}

// removeVolumes removes the copies of a guest's volume sources.
func removeVolumes(work, guestName string) error {
	return os.RemoveAll(volumesDir(work, guestName))
}
