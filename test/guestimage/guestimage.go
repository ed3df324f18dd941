// Package guestimage builds TestbedOS's own tiny bootable test VM image: the
// host's Debian kernel (/boot/vmlinuz-*) and an initramfs holding a static
// busybox, the kernel's virtio modules, an /init that configures the network
// from tb.* kernel parameters, and a small Go SSH server (./sshd). Tests
// boot it under QEMU (TCG) or libvirt with direct kernel boot; see README.md
// and Params for the kernel command line.
//
// Building needs: a kernel with its modules (linux-image-amd64),
// busybox-static, and the go command with this module's source (the SSH
// server is compiled from ./sshd). scripts/install-test-deps.sh installs
// the packages.
package guestimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// builderVersion changes whenever the image layout changes in a way that
// the hashed inputs do not show, to invalidate cached images.
const builderVersion = "2"

// File names in an image directory.
const (
	KernelFile    = "vmlinuz"
	KernelELFFile = "vmlinux"
	InitrdFile    = "initramfs.cpio.gz"
	infoFile      = "image.json"
)

//go:embed rootfs
var rootfs embed.FS

// Options says what to build the image from. The zero value picks
// everything from the host.
type Options struct {
	// KernelVersion selects /boot/vmlinuz-VERSION and
	// /lib/modules/VERSION. Default: $TESTBEDOS_GUEST_KERNEL, else the
	// newest kernel in /boot that has a virtio_net module.
	KernelVersion string
	// BootDir and ModulesRoot default to /boot and /lib/modules.
	BootDir, ModulesRoot string
	// Busybox is a static busybox binary. Default: /bin/busybox or
	// /usr/bin/busybox.
	Busybox string
	// SSHD is a prebuilt static tb-sshd binary. Default: built from
	// ./sshd with the go command (CGO_ENABLED=0).
	SSHD string
	// SourceDir is the root of this module's source, for building the
	// SSH server. Default: found from this file's path or the working
	// directory.
	SourceDir string
	// Logf reports progress. Default: discard.
	Logf func(format string, args ...any)
}

// Image is a built image.
type Image struct {
	Dir    string `json:"-"`
	Kernel string `json:"-"` // Dir/vmlinuz
	Initrd string `json:"-"` // Dir/initramfs.cpio.gz
	// KernelELF is Dir/vmlinux, the uncompressed kernel for PVH boot
	// (QEMU/libvirt direct kernel boot accept it like vmlinuz): under TCG
	// it reaches the ready marker about two seconds sooner. Empty when
	// the kernel could not be extracted or has no PVH entry point.
	KernelELF     string        `json:"-"`
	HasKernelELF  bool          `json:"kernel_elf"`
	KernelVersion string        `json:"kernel_version"`
	Hash          string        `json:"hash"`    // of all inputs: the cache key
	Modules       []string      `json:"modules"` // load order
	BuildTime     time.Duration `json:"build_time_ns"`
	// Cached is true when Cached found the image already built.
	Cached bool `json:"-"`
}

// inputs are the resolved build inputs.
type inputs struct {
	kver, kernel, modDir, busybox, sshd, src string
	mods                                     []kmod
	hash                                     string
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Build builds the image into outDir (created if needed): outDir/vmlinuz
// and outDir/initramfs.cpio.gz.
func Build(ctx context.Context, outDir string, opts Options) (*Image, error) {
	start := time.Now()
	in, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	img, err := build(ctx, outDir, in, opts)
	if err != nil {
		return nil, err
	}
	img.BuildTime = time.Since(start)
	return img, writeInfo(img)
}

// BootKernel is the kernel to boot: KernelELF when there is one, else
// Kernel.
func (img *Image) BootKernel() string {
	if img.KernelELF != "" {
		return img.KernelELF
	}
	return img.Kernel
}

// resolve finds the inputs and hashes them.
func resolve(opts Options) (*inputs, error) {
	in := &inputs{}
	bootDir := orDefault(opts.BootDir, "/boot")
	modRoot := orDefault(opts.ModulesRoot, "/lib/modules")
	in.kver = opts.KernelVersion
	if in.kver == "" {
		in.kver = os.Getenv("TESTBEDOS_GUEST_KERNEL")
	}
	if in.kver == "" {
		v, err := FindKernel(bootDir, modRoot)
		if err != nil {
			return nil, err
		}
		in.kver = v
	}
	in.kernel = filepath.Join(bootDir, "vmlinuz-"+in.kver)
	in.modDir = filepath.Join(modRoot, in.kver)
	if _, err := os.Stat(in.kernel); err != nil {
		return nil, fmt.Errorf("kernel: %v (install linux-image-amd64: scripts/install-test-deps.sh)", err)
	}
	mods, err := resolveModules(in.modDir, RequiredModules, OptionalModules)
	if err != nil {
		return nil, err
	}
	in.mods = mods

	in.busybox = opts.Busybox
	if in.busybox == "" {
		for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
			if _, err := os.Stat(p); err == nil {
				in.busybox = p
				break
			}
		}
		if in.busybox == "" {
			return nil, errors.New("busybox not found (install busybox-static: scripts/install-test-deps.sh)")
		}
	}
	if err := checkStatic(in.busybox); err != nil {
		return nil, fmt.Errorf("%v (install busybox-static)", err)
	}

	h := sha256.New()
	fmt.Fprintf(h, "builder %s\nkernel %s\n", builderVersion, in.kver)
	hashFile(h, in.kernel)
	for _, m := range in.mods {
		fmt.Fprintf(h, "module %s %v\n", m.Name, m.Required)
		hashFile(h, filepath.Join(in.modDir, m.Path))
	}
	hashFile(h, in.busybox)
	fs.WalkDir(rootfs, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := rootfs.ReadFile(p)
			fmt.Fprintf(h, "rootfs %s %d\n", p, len(b))
			h.Write(b)
		}
		return nil
	})
	if opts.SSHD != "" {
		in.sshd = opts.SSHD
		if err := checkStatic(in.sshd); err != nil {
			return nil, err
		}
		hashFile(h, in.sshd)
	} else {
		src, err := sourceDir(opts.SourceDir)
		if err != nil {
			return nil, err
		}
		in.src = src
		fmt.Fprintf(h, "go %s\n", runtime.Version())
		hashFile(h, filepath.Join(src, "go.mod"))
		files, _ := filepath.Glob(filepath.Join(src, "test", "guestimage", "sshd", "*.go"))
		sort.Strings(files)
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				fmt.Fprintf(h, "sshd %s\n", filepath.Base(f))
				hashFile(h, f)
			}
		}
	}
	in.hash = hex.EncodeToString(h.Sum(nil))
	return in, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func hashFile(h io.Writer, path string) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(h, "missing %s\n", path)
		return
	}
	defer f.Close()
	io.Copy(h, f)
}

// FindKernel returns the version of the newest kernel in bootDir
// (vmlinuz-VERSION) whose modules dir has virtio_net.
func FindKernel(bootDir, modRoot string) (string, error) {
	ks, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	var best string
	var bestTime time.Time
	for _, k := range ks {
		v := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
		dep, err := os.ReadFile(filepath.Join(modRoot, v, "modules.dep"))
		if err != nil || !bytes.Contains(dep, []byte("/virtio_net.ko")) {
			continue
		}
		fi, err := os.Stat(k)
		if err != nil {
			continue
		}
		if best == "" || fi.ModTime().After(bestTime) {
			best, bestTime = v, fi.ModTime()
		}
	}
	if best == "" {
		return "", fmt.Errorf("no kernel with virtio_net module in %s and %s (install linux-image-amd64: scripts/install-test-deps.sh)", bootDir, modRoot)
	}
	return best, nil
}

// checkStatic fails unless path is an ELF executable without an
// interpreter (statically linked).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// sourceDir finds the root of this module's source tree.
func sourceDir(dir string) (string, error) {
	isRoot := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		return err == nil && bytes.Contains(b, []byte("module github.com/testbedos/testbedos\n")) &&
			fileExists(filepath.Join(d, "test", "guestimage", "sshd", "main.go"))
	}
	if dir != "" {
		if !isRoot(dir) {
			return "", fmt.Errorf("%s is not the testbedos source root", dir)
		}
		return dir, nil
	}
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			if isRoot(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("cannot find the testbedos source tree to build tb-sshd: set Options.SourceDir or Options.SSHD")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if r := os.Getenv("GOROOT"); r != "" {
		return filepath.Join(r, "bin", "go")
	}
	return "/usr/local/go/bin/go"
}

// buildSSHD compiles ./sshd statically into dst.
func buildSSHD(ctx context.Context, src, dst string) error {
	cmd := exec.CommandContext(ctx, goCommand(), "build", "-trimpath", "-ldflags=-s -w", "-o", dst, "./test/guestimage/sshd")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building tb-sshd: %v\n%s", err, out)
	}
	return checkStatic(dst)
}

func build(ctx context.Context, outDir string, in *inputs, opts Options) (*Image, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	t := tree{}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc/tb", "lib/modules/tb",
		"proc", "sys", "dev", "run", "root", "var/log", "mnt"} {
		t.parents(d + "/x")
	}
	t.dir("tmp", 0o1777)
	t.dir("root", 0o700)
	t.charDev("dev/console", 0o600, 5, 1)
	t.charDev("dev/null", 0o666, 1, 3)

	// busybox and its applet links.
	bb, err := os.ReadFile(in.busybox)
	if err != nil {
		return nil, err
	}
	t.file("bin/busybox", 0o755, bb)
	list, err := exec.CommandContext(ctx, in.busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %v", in.busybox, err)
	}
	for _, a := range strings.Fields(string(list)) {
		a = strings.TrimPrefix(a, "/")
		if _, taken := t[a]; !taken && a != "init" {
			t.symlink(a, "/bin/busybox")
		}
	}
	if _, ok := t["bin/sh"]; !ok {
		return nil, fmt.Errorf("%s has no sh applet", in.busybox)
	}

	// The SSH server.
	sshd := in.sshd
	if sshd == "" {
		opts.logf("guestimage: building tb-sshd")
		sshd = filepath.Join(outDir, ".tb-sshd")
		defer os.Remove(sshd)
		if err := buildSSHD(ctx, in.src, sshd); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(sshd)
	if err != nil {
		return nil, err
	}
	t.file("sbin/tb-sshd", 0o755, b)

	// Modules, in load order.
	var modList strings.Builder
	var names []string
	for _, m := range in.mods {
		data, err := readModule(filepath.Join(in.modDir, m.Path))
		if err != nil {
			return nil, err
		}
		t.file("lib/modules/tb/"+m.Name+".ko", 0o644, data)
		kind := "optional"
		if m.Required {
			kind = "required"
		}
		fmt.Fprintf(&modList, "%s %s\n", m.Name, kind)
		names = append(names, m.Name)
	}
	t.file("etc/tb/modules", 0o644, []byte(modList.String()))

	// Scripts and configuration.
	for _, f := range []struct {
		src, dst string
		perm     uint32
	}{
		{"rootfs/init", "init", 0o755},
		{"rootfs/inittab", "etc/inittab", 0o644},
		{"rootfs/run-sshd", "etc/tb/run-sshd", 0o755},
		{"rootfs/ready", "etc/tb/ready", 0o755},
		{"rootfs/serial-shell", "etc/tb/serial-shell", 0o755},
		{"rootfs/acpi-power", "etc/acpi/PWRF/00000080", 0o755},
	} {
		b, err := rootfs.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		t.file(f.dst, f.perm, b)
	}
	t.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	t.file("etc/group", 0o644, []byte("root:x:0:\ntty:x:5:\n"))
	t.file("etc/testbedos-guest", 0o644, []byte(fmt.Sprintf("kernel=%s\nhash=%s\n", in.kver, in.hash)))

	// Write the archive and copy the kernel.
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if err := writeCPIO(zw, t); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	img := &Image{KernelVersion: in.kver, Hash: in.hash, Modules: names}
	img.setDir(outDir)
	if err := os.WriteFile(img.Initrd, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(in.kernel)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(img.Kernel, kernel, 0o644); err != nil {
		return nil, err
	}
	if vmlinux, err := extractVmlinux(kernel); err != nil {
		opts.logf("guestimage: no PVH kernel (%v): boot %s", err, KernelFile)
	} else {
		if err := os.WriteFile(filepath.Join(outDir, KernelELFFile), vmlinux, 0o644); err != nil {
			return nil, err
		}
		img.HasKernelELF = true
		img.setDir(outDir)
	}
	opts.logf("guestimage: built %s (kernel %s, initramfs %d KiB, %d modules)", outDir, in.kver, buf.Len()>>10, len(names))
	return img, nil
}
