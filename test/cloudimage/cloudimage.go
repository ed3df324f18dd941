// Package cloudimage gives tests a real Debian 12 cloud image (the cloud
// kernel, systemd, cloud-init with NoCloud, OpenSSH, growpart, extlinux on
// an MBR disk, console on ttyS0), built on the machine from Debian's
// packages by build.sh, cached between runs under a hash of the recipe, and
// served over HTTP on loopback, so tests drive the whole
// cloud_image: {url: …} path of the libvirt driver.
package cloudimage

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/testbedos/testbedos/test/guestimage"
)

//go:embed build.sh
var recipe []byte

// FileName is the image's file name in its cache folder and its URL path.
const FileName = "debian12-cloud.qcow2"

// Tools build.sh needs; Missing names the absent ones.
var tools = []string{"mmdebstrap", "extlinux", "sfdisk", "mke2fs", "qemu-img", "losetup", "mount"}

// Missing lists the tools the build needs that are not installed.
func Missing() []string {
	var out []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			out = append(out, t)
		}
	}
	if _, err := os.Stat("/usr/lib/syslinux/mbr/mbr.bin"); err != nil {
		out = append(out, "syslinux-common (mbr.bin)")
	}
	return out
}

// Image is a built image.
type Image struct {
	Path   string // the qcow2 file
	SHA256 string // of the file, hex
	Size   int64
	// Built: this call built it (not found in the cache); Took: how long.
	Built bool
	Took  time.Duration
}

// Hash is the recipe's hash: it names the cache folder.
func Hash() string {
	sum := sha256.Sum256(recipe)
	return hex.EncodeToString(sum[:])
}

// Cached returns the image from the cache (guestimage.CacheDir()/cloudimage/
// <recipe hash>/), building it the first time. Safe across processes (an
// flock); logf reports the build.
func Cached(ctx context.Context, logf func(string, ...any)) (*Image, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	base := filepath.Join(guestimage.CacheDir(), "cloudimage")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	// QEMU's user reads the image through every folder above it.
	_ = os.Chmod(base, 0o755)
	unlock, err := lock(ctx, filepath.Join(base, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := filepath.Join(base, Hash()[:16])
	file := filepath.Join(dir, FileName)
	if img, err := describe(file); err == nil {
		return img, nil
	}
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("cloudimage: missing %v (run scripts/install-test-deps.sh)", m)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "build.sh")
	if err := os.WriteFile(script, recipe, 0o755); err != nil {
		return nil, err
	}
	logf("cloudimage: building %s (mmdebstrap from Debian's mirror; about two minutes)", file)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "/bin/sh", script, file)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("cloudimage: build.sh: %w\n%s", err, tail(out, 4000))
	}
	img, err := describe(file)
	if err != nil {
		return nil, err
	}
	img.Built, img.Took = true, time.Since(start)
	prune(base, filepath.Base(dir), 2)
	logf("cloudimage: built in %s: %.0f MiB", img.Took.Round(time.Second), float64(img.Size)/(1<<20))
	return img, nil
}

// prune keeps the keep most recently built images of base (this one among
// them): an image is 150 MB.
func prune(base, current string, keep int) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	type built struct {
		name string
		mod  time.Time
	}
	var all []built
	for _, e := range entries {
		if !e.IsDir() || e.Name() == current {
			continue
		}
		if info, err := e.Info(); err == nil {
			all = append(all, built{e.Name(), info.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.After(all[j].mod) })
	for i, b := range all {
		if i >= keep-1 {
			os.RemoveAll(filepath.Join(base, b.name))
		}
	}
}

func describe(file string) (*Image, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &Image{Path: file, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func lock(ctx context.Context, path string) (func(), error) {
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
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Server serves files over HTTP on 127.0.0.1: the image at /FileName, and
// whatever else a test puts in Files. It answers HEAD and range requests
// and sends Last-Modified (http.ServeContent), as a mirror does.
type Server struct {
	URL   string // http://127.0.0.1:PORT
	Files map[string]string
	// Requests counts GETs of each path (not HEADs).
	srv      *http.Server
	requests chan string
	counts   map[string]int
}

// Serve starts a server for img; Close stops it.
func Serve(img *Image) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String(), Files: map[string]string{"/" + FileName: img.Path}, counts: map[string]int{}}
	s.requests = make(chan string, 1)
	s.requests <- ""
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// ImageURL is the URL of the image.
func (s *Server) ImageURL() string { return s.URL + "/" + FileName }

// GETs is how many GET requests path got.
func (s *Server) GETs(path string) int {
	<-s.requests
	defer func() { s.requests <- "" }()
	return s.counts[path]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	<-s.requests
	file, ok := s.Files[r.URL.Path]
	if ok && r.Method == http.MethodGet {
		s.counts[r.URL.Path]++
	}
	s.requests <- ""
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(file)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, filepath.Base(file), info.ModTime(), f)
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }
