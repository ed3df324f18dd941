package guestimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// RequiredModules are the modules the guest needs for its virtio NIC, in
// the order they are loaded (each after its dependencies).
var RequiredModules = []string{
	"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
	"virtio_pci", "failover", "net_failover", "virtio_net",
}

// OptionalModules are loaded when the kernel has them, failures tolerated:
// virtio disks, console and entropy, 9p file sharing, and the ACPI power
// button (so that virsh shutdown / QEMU system_powerdown power off).
var OptionalModules = []string{
	"virtio_blk", "virtio_console", "virtio_rng",
	"netfs", "fscache", "9pnet", "9pnet_virtio", "9p",
	"button", "evdev",
}

// kmod is a module to put in the image.
type kmod struct {
	Name     string // normalised: '-' is '_'
	Path     string // file under the modules dir
	Required bool
}

func modName(p string) string {
	b := filepath.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// resolveModules reads modules.dep and modules.builtin of a kernel's
// modules dir and returns the loadable modules among required and
// optional, with their dependencies, in load order. Built-in modules are
// left out. A required module that is neither loadable nor built in is an
// error; a missing optional one is skipped.
func resolveModules(modDir string, required, optional []string) ([]kmod, error) {
	depData, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}  // name -> relative path
	deps := map[string][]string{} // name -> dependency names
	sc := bufio.NewScanner(bytes.NewReader(depData))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n := modName(mod)
		paths[n] = mod
		for _, d := range strings.Fields(rest) {
			deps[n] = append(deps[n], modName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[modName(l)] = true
		}
	}

	var out []kmod
	index := map[string]int{}
	var visit func(n string, req bool, stack []string) error
	visit = func(n string, req bool, stack []string) error {
		if i, ok := index[n]; ok {
			out[i].Required = out[i].Required || req
			return nil
		}
		for _, s := range stack {
			if s == n {
				return fmt.Errorf("module dependency cycle: %s", strings.Join(append(stack, n), " -> "))
			}
		}
		p, ok := paths[n]
		if !ok {
			if builtin[n] || !req {
				return nil
			}
			return fmt.Errorf("module %s: not in %s/modules.dep nor built in", n, modDir)
		}
		// modules.dep lists a module's dependencies so that loading them
		// from last to first works; visiting in that order keeps it.
		ds := deps[n]
		for i := len(ds) - 1; i >= 0; i-- {
			if err := visit(ds[i], req, append(stack, n)); err != nil {
				return err
			}
		}
		index[n] = len(out)
		out = append(out, kmod{Name: n, Path: p, Required: req})
		return nil
	}
	for _, n := range required {
		if err := visit(n, true, nil); err != nil {
			return nil, err
		}
	}
	for _, n := range optional {
		if err := visit(n, false, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readModule returns a module file's content, decompressed: busybox
// insmod is given plain .ko files.
func readModule(path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".ko.xz"):
		return decompressWith(path, "xz", "-dc")
	case strings.HasSuffix(path, ".ko.zst"):
		return decompressWith(path, "zstd", "-dcq")
	}
	return nil, fmt.Errorf("%s: unknown module compression", path)
}

func decompressWith(path, tool string, args ...string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, err := filter(data, tool, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return out, nil
}
