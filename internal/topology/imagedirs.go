package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LibvirtImageDir is libvirt's own image folder, where the original's labs
// keep the disks they boot.
const LibvirtImageDir = "/var/lib/libvirt/images"

// DefaultImageDirs are the folders outside a project that its disks and
// ISOs may lie under: libvirt's image folder and, with a data folder,
// <data>/images.
func DefaultImageDirs(dataDir string) []string {
	dirs := []string{LibvirtImageDir}
	if dataDir != "" {
		dirs = append(dirs, filepath.Join(dataDir, "images"))
	}
	return dirs
}

// imageFile resolves an absolute path (or ${PWD}-relative one) to a
// regular file under one of dirs, symlinks followed and still under it, or
// says why it cannot.
func imageFile(root, realRoot, path string, dirs []string) (string, string) {
	target := filepath.Clean(ExpandPWD(path, root))
	if !filepath.IsAbs(target) {
		target = filepath.Join(root, target)
	}
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		d = filepath.Clean(d)
		if !filepath.IsAbs(d) {
			continue
		}
		names = append(names, d)
		if !Within(d, target) {
			continue
		}
		realDir, err := filepath.EvalSymlinks(d)
		if err != nil {
			return "", fmt.Sprintf("cannot be read: image folder %s: %v", d, err)
		}
		real, err := filepath.EvalSymlinks(target)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Sprintf("does not exist in the image folder %s", d)
		case err != nil:
			return "", fmt.Sprintf("cannot be read: %v", err)
		case !Within(realDir, real):
			return "", fmt.Sprintf("leads through a symlink to %s, outside the image folder %s", real, d)
		}
		if info, err := os.Stat(real); err != nil || !info.Mode().IsRegular() {
			return "", "is not a regular file"
		}
		return real, ""
	}
	return "", fmt.Sprintf("is outside the project folder %s and the image folders (%s; TESTBEDOS_IMAGE_DIRS sets them)", root, strings.Join(names, ", "))
}
