package libvirt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// disksDirMode lets QEMU's unprivileged user (libvirt-qemu) enter the disks
// folders to open the files libvirt gives it, without listing them.
const disksDirMode = 0o711

// makeDisksDir makes a deployment's disks folder and its parent, each
// searchable by QEMU's user. A symlink in their place is refused: disks are
// made and deleted only in the server's own folder.
func makeDisksDir(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		err := os.Mkdir(d, disksDirMode)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("disks folder: %w", err)
		}
		info, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("disks folder: %w", err)
		}
		if !info.IsDir() {
			return fmt.Errorf("disks folder %s is not a folder (%s): remove it", d, info.Mode().Type())
		}
		if err := os.Chmod(d, disksDirMode); err != nil {
			return fmt.Errorf("disks folder: %w", err)
		}
	}
	return nil
}

// openDisksDir opens dir without following a symlink in its place.
func openDisksDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// removeDiskFiles deletes the named files of the disks folder dir, if there;
// a dir that is missing holds none, and one that is a symlink is refused.
func removeDiskFiles(dir string, names []string) error {
	fd, err := openDisksDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disks folder: %w", err)
	}
	defer unix.Close(fd)
	for _, n := range names {
		if err := unix.Unlinkat(fd, n, 0); err != nil && err != unix.ENOENT {
			return fmt.Errorf("remove disk %s: %w", filepath.Join(dir, n), err)
		}
	}
	return nil
}

// removeEmptyDisksDir removes the disks folder dir when it is an empty
// folder (rmdir never follows a symlink, and fails on one).
func removeEmptyDisksDir(dir string) {
	_ = unix.Rmdir(dir)
}
