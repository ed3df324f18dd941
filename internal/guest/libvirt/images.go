package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/topology"
)

// cacheFileName is the file a cloud image is kept in: the YAML's name, or
// a hash of the URL followed by the URL's last path element.
func cacheFileName(spec *topology.LibvirtSpec) string {
	if spec.ImageName != "" {
		return spec.ImageName
	}
	sum := sha256.Sum256([]byte(spec.ImageURL))
	base := "image"
	if u, err := url.Parse(spec.ImageURL); err == nil {
		if b := path.Base(u.Path); b != "." && b != "/" && b != "" {
			base = b
		}
	}
	base = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, base)
	return hex.EncodeToString(sum[:6]) + "-" + base
}

// cachedImage returns the cloud image of spec from the cache, downloading
// it the first time, and its format (qcow2 or raw, from its first bytes).
// The cache is readable by QEMU's user: the image is the backing file of
// the guests' linked clones.
func (d *Driver) cachedImage(ctx context.Context, spec *topology.LibvirtSpec, log actlog.Log) (string, string, error) {
	dir := d.opts.ImageCache
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("image cache: %w", err)
	}
	name := cacheFileName(spec)
	if !topology.PlainFileName(name) {
		return "", "", fmt.Errorf("image name %q is not a plain file name", name)
	}
	file := filepath.Join(dir, name)
	unlock := d.images.lock(file)
	defer unlock()
	if _, err := os.Stat(file); err == nil {
		format, err := imageFormat(file)
		return file, format, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("image cache: %w", err)
	}
	log.Printf("    downloading %s into %s", spec.ImageURL, file)
	start := time.Now()
	n, err := download(ctx, spec.ImageURL, file)
	if err != nil {
		return "", "", err
	}
	log.Printf("    downloaded %s: %.1f MiB in %.1f s", filepath.Base(file), float64(n)/(1<<20), time.Since(start).Seconds())
	format, err := imageFormat(file)
	return file, format, err
}

// download fetches rawURL into file, through a temporary file so that an
// interrupted download leaves nothing that looks cached.
func download(ctx context.Context, rawURL, file string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("download %s: %s", rawURL, resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".part-*")
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", rawURL, err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return n, fmt.Errorf("download %s: %w", rawURL, err)
	}
	return n, nil
}

// imageFormat tells qcow2 from raw by the qcow2 magic.
func imageFormat(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	if bytes.Equal(magic, []byte("QFI\xfb")) {
		return "qcow2", nil
	}
	return "raw", nil
}

// virtualSize is the size a guest sees of an image: a qcow2's header field
// (big-endian, bytes 24–31), a raw file's length.
func virtualSize(file, format string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if format != "qcow2" {
		info, err := f.Stat()
		if err != nil {
			return 0, err
		}
		return uint64(info.Size()), nil
	}
	hdr := make([]byte, 32)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, fmt.Errorf("%s: qcow2 header: %w", file, err)
	}
	return binary.BigEndian.Uint64(hdr[24:32]), nil
}
