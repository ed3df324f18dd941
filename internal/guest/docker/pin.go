package docker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinner bind-mounts the volume sources a guest's config opened onto a
// private folder of the guest, <dir>/<deployment>/<guest>/<n>, which is
// what docker is given: a bind made from the descriptor that was checked
// cannot be redirected by swapping a project folder for a symlink before
// dockerd looks the path up.
type pinner struct {
	dir        string
	deployment string
	guest      string
}

// guestDir is the guest's private folder of pinned sources.
func (p pinner) guestDir() string { return filepath.Join(p.dir, p.deployment, p.guest) }

// pin bind-mounts the file or folder open in f (an O_PATH descriptor) as
// the guest's n-th volume source and returns the path docker mounts.
func (p pinner) pin(n int, f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	dir := p.guestDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("volume: %w", err)
	}
	target := filepath.Join(dir, strconv.Itoa(n))
	if fi.IsDir() {
		err = os.Mkdir(target, 0o700)
	} else {
		var t *os.File
		if t, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			t.Close()
		}
	}
	if err != nil {
		return "", fmt.Errorf("volume: %w", err)
	}
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		os.Remove(target)
		return "", fmt.Errorf("volume %s: bind onto %s: %w", f.Name(), target, err)
	}
	return target, nil
}

// unpin unmounts and removes every pinned source of the guest. A guest
// without any is fine.
func (p pinner) unpin() error {
	dir := p.guestDir()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("volumes: %w", err)
	}
	var errs []error
	for _, e := range entries {
		target := filepath.Join(dir, e.Name())
		if err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", target, err))
			continue
		}
		if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		_ = os.Remove(dir)
		_ = os.Remove(filepath.Dir(dir)) // the deployment's, when empty
	}
	return errors.Join(errs...)
}
