package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Pin bind-mounts the file or folder open in f onto target, made as an
// empty file or folder of the same kind, so that target names exactly what
// f is: a project file swapped for a symlink after it was checked cannot
// redirect what a container mounts or what QEMU opens through target. The
// bind is made from f itself (/proc/self/fd/N), not from a path.
func Pin(f *os.File, target string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o711); err != nil {
		return fmt.Errorf("pin %s: %w", f.Name(), err)
	}
	if fi.IsDir() {
		err = os.Mkdir(target, 0o700)
	} else {
		var t *os.File
		if t, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			t.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("pin %s: %w", f.Name(), err)
	}
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		os.Remove(target)
		return fmt.Errorf("pin %s: bind onto %s: %w", f.Name(), target, err)
	}
	return nil
}

// Unpin unmounts and removes every pin in dir, then dir itself when it is
// empty. It never deletes anything through a pin: a target that stays
// mounted stays, and a folder is removed only when empty. A missing dir
// holds none.
func Unpin(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unpin: %w", err)
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
	}
	return errors.Join(errs...)
}
