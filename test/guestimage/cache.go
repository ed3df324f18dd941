// The cache of built images: one folder per set of inputs, shared by
// concurrent test processes under a file lock, the oldest pruned.

package guestimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Cached returns the image for opts from the cache directory, building it
// there first when no image for the same inputs (kernel, modules, busybox,
// SSH server source, init scripts) exists. Safe for concurrent use by
// several processes. The cache directory is $TESTBEDOS_TEST_CACHE, else
// $XDG_CACHE_HOME/testbedos-test, else /var/cache/testbedos-test for root,
// else ~/.cache/testbedos-test.
func Cached(ctx context.Context, opts Options) (*Image, error) {
	start := time.Now()
	in, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(CacheDir(), "guestimage")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(base, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(base, in.kver+"-"+in.hash[:16])
	if img, err := readInfo(dir); err == nil && img.Hash == in.hash {
		now := time.Now()
		os.Chtimes(dir, now, now) // most recently used, for pruning
		img.Cached = true
		return img, nil
	}
	tmp, err := os.MkdirTemp(base, ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// Readable by all: libvirt runs QEMU as its own user (libvirt-qemu).
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	img, err := build(ctx, tmp, in, opts)
	if err != nil {
		return nil, err
	}
	img.BuildTime = time.Since(start)
	if err := writeInfo(img); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	prune(base, 3)
	return readInfo(dir)
}

// CacheDir is where Cached keeps images (see Cached).
func CacheDir() string {
	if d := os.Getenv("TESTBEDOS_TEST_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "testbedos-test")
	}
	if os.Geteuid() == 0 {
		return "/var/cache/testbedos-test"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "testbedos-test")
	}
	return filepath.Join(os.TempDir(), "testbedos-test-cache")
}

func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %v", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// prune keeps the keep most recently used images in base.
func prune(base string, keep int) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	type dir struct {
		path string
		mod  time.Time
	}
	var dirs []dir
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			dirs = append(dirs, dir{filepath.Join(base, e.Name()), fi.ModTime()})
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].mod.After(dirs[j].mod) })
	for i := keep; i < len(dirs); i++ {
		os.RemoveAll(dirs[i].path)
	}
}

func writeInfo(img *Image) error {
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(img.Dir, infoFile), append(b, '\n'), 0o644)
}

func readInfo(dir string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return nil, err
	}
	img := &Image{}
	if err := json.Unmarshal(b, img); err != nil {
		return nil, err
	}
	img.setDir(dir)
	for _, p := range []string{img.Kernel, img.Initrd, img.KernelELF} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return img, nil
}

func (img *Image) setDir(dir string) {
	img.Dir = dir
	img.Kernel = filepath.Join(dir, KernelFile)
	img.Initrd = filepath.Join(dir, InitrdFile)
	img.KernelELF = ""
	if img.HasKernelELF {
		img.KernelELF = filepath.Join(dir, KernelELFFile)
	}
}
