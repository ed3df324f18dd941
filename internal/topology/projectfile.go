package topology

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/api"
)

// Size limits of the files the server reads whole.
const (
	// MaxTopologyFile bounds kvm-compose.yaml.
	MaxTopologyFile = 4 << 20
	// MaxStateFile bounds a state.json (a thousand guests take about 2 MiB).
	MaxStateFile = 64 << 20
)

// Errors of reading a project file, for callers that branch on them.
var (
	// ErrNotRegular: the path names a FIFO, device, socket or folder where
	// a regular file is wanted.
	ErrNotRegular = api.Categorized(api.ErrInvalid, "is not a regular file")
	// ErrTooLarge: the file is larger than its limit.
	ErrTooLarge = api.Categorized(api.ErrInvalid, "is larger than the limit")
	// ErrEscapes: the path, or a symlink on the way, leads out of the
	// project folder.
	ErrEscapes = api.Categorized(api.ErrInvalid, "leads outside the project folder")
)

// OpenBeneath opens path (absolute inside dir, or relative to it) with
// flags, resolving every component inside dir: a symlink may point to
// another place inside dir, never out of it (absolute symlinks and ".."
// past dir are refused, as are /proc magic links). O_CLOEXEC, and but for
// O_PATH O_NOCTTY, are added. dir itself is opened as given.
func OpenBeneath(dir, path string, flags int) (*os.File, error) {
	rel, err := relInside(dir, path)
	if err != nil {
		return nil, err
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	flags |= unix.O_CLOEXEC
	if flags&unix.O_PATH == 0 {
		// openat2 takes no other flag beside O_PATH.
		flags |= unix.O_NOCTTY
	}
	how := &unix.OpenHow{
		Flags:   uint64(flags),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	for {
		fd, err = unix.Openat2(root, rel, how)
		if err != unix.EINTR {
			break
		}
	}
	full := filepath.Join(dir, rel)
	switch {
	case err == unix.EXDEV:
		return nil, fmt.Errorf("%s %w %s", full, ErrEscapes, dir)
	case err == unix.ENOSYS:
		return nil, fmt.Errorf("open %s: this kernel has no openat2 (Linux 5.6 or later is needed)", full)
	case err != nil:
		return nil, &fs.PathError{Op: "open", Path: full, Err: err}
	}
	return os.NewFile(uintptr(fd), full), nil
}

// relInside turns path, absolute or relative to dir, into a path relative
// to dir; an absolute path outside dir is refused.
func relInside(dir, path string) (string, error) {
	if !filepath.IsAbs(path) {
		return filepath.Clean(path), nil
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("%s %w %s", path, ErrEscapes, dir)
	}
	return rel, nil
}

// OpenProjectFile opens a regular file of the project folder for reading,
// without following symlinks out of it. It is opened non-blocking, so a
// FIFO cannot hold the caller, and anything but a regular file is refused
// (ErrNotRegular).
func OpenProjectFile(project, path string) (*os.File, error) {
	f, err := OpenBeneath(project, path, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if err := regular(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadProjectFile reads a regular file of the project folder whole, as
// OpenProjectFile opens it, refusing one larger than limit bytes
// (ErrTooLarge) before reading it.
func ReadProjectFile(project, path string, limit int64) ([]byte, error) {
	f, err := OpenProjectFile(project, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, limit)
}

// ReadRegularFile reads the regular file at path, which may not be a
// symlink, whole, refusing one larger than limit bytes. It is for files in
// the server's own folders (a state.json in the data folder).
func ReadRegularFile(path string, limit int64) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.ELOOP {
		return nil, fmt.Errorf("%s is a symlink: %w", path, ErrNotRegular)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := regular(f); err != nil {
		return nil, err
	}
	return readLimited(f, limit)
}

// regular refuses an open file that is not a regular file.
func regular(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s %w", f.Name(), ErrNotRegular)
	}
	return nil
}

// readLimited reads f whole when it holds at most limit bytes; it never
// reads more than limit+1, whatever the file grows to meanwhile.
func readLimited(f *os.File, limit int64) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%s (%d bytes) %w of %d bytes", f.Name(), info.Size(), ErrTooLarge, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %w of %d bytes", f.Name(), ErrTooLarge, limit)
	}
	return data, nil
}
