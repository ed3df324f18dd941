package bundle

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// MetaDir is the folder of an imported project that keeps the rest of its
// bundle: manifest, state, record, impairments, logs. Exports leave it out.
const MetaDir = ".bundle"

// Limits bound what Extract writes, whatever the upload claims.
type Limits struct {
	// MaxEntries bounds the number of files and folders.
	MaxEntries int
	// MaxBytes bounds the bytes written, all files together.
	MaxBytes int64
	// MaxRatio bounds the bytes written per compressed byte read (plus
	// Slack): a decompression bomb is cut off early, not at MaxBytes.
	MaxRatio int64
	Slack    int64
}

// DefaultLimits: 20,000 entries, 8 GiB, 200:1 (gzip's best is about
// 1,000:1, reached only by runs of one byte such as an empty raw disk;
// qcow2 images stay far below).
var DefaultLimits = Limits{MaxEntries: 20000, MaxBytes: 8 << 30, MaxRatio: 200, Slack: 64 << 20}

const maxManifest = 16 << 20

// ErrLimit: the bundle goes past a Limit.
var ErrLimit = api.Categorized(api.ErrBadRequest, "bundle too large")

// countingReader counts the compressed bytes read.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Extract reads the bundle r into project, an empty folder made for it:
// the project files into it, the rest under MetaDir. Every entry is a
// regular file or folder with a local path (no "..", not absolute); links,
// devices and the like are refused, as is a project file whose digest is
// not the manifest's. Files are written through an os.Root of project, so
// nothing lands outside it. It returns the manifest and the number of
// project files.
func Extract(r io.Reader, project string, lim Limits) (*api.BundleManifest, int, error) {
	cr := &countingReader{r: r}
	gz, err := gzip.NewReader(cr)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: not gzip: %v", ErrNotBundle, err)
	}
	tr := tar.NewReader(gz)
	root, err := os.OpenRoot(project)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	var m *api.BundleManifest
	want := map[string]api.BundleFile{}
	var written int64
	entries, files := 0, 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrNotBundle, err)
		}
		if entries++; entries > lim.MaxEntries {
			return nil, 0, fmt.Errorf("%w: more than %d entries", ErrLimit, lim.MaxEntries)
		}
		name, err := entryName(hdr)
		if err != nil {
			return nil, 0, err
		}
		if m == nil {
			if name != ManifestName || hdr.Typeflag != tar.TypeReg {
				return nil, 0, fmt.Errorf("%w: its first entry is %q, not %s", ErrNotBundle, hdr.Name, ManifestName)
			}
			if m, err = readManifest(tr, hdr); err != nil {
				return nil, 0, err
			}
			for _, f := range m.Files {
				want[f.Path] = f
			}
		}
		var dest string
		switch rel, ok := strings.CutPrefix(name, ProjectDir+"/"); {
		case name == ProjectDir:
			continue
		case ok && (rel == MetaDir || strings.HasPrefix(rel, MetaDir+"/")):
			return nil, 0, fmt.Errorf("%w: entry %q: %s is where an import keeps the bundle", ErrNotBundle, hdr.Name, MetaDir)
		case ok:
			dest = rel
		default:
			dest = MetaDir + "/" + name
		}
		if hdr.Typeflag == tar.TypeDir {
			if err := root.MkdirAll(dest, 0o755); err != nil {
				return nil, 0, err
			}
			continue
		}
		if hdr.Size < 0 || written+hdr.Size > lim.MaxBytes {
			return nil, 0, fmt.Errorf("%w: more than %d bytes unpacked", ErrLimit, lim.MaxBytes)
		}
		if dir := path.Dir(dest); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return nil, 0, err
			}
		}
		var src io.Reader = tr
		if name == ManifestName {
			data, _ := json.MarshalIndent(m, "", "  ")
			src = strings.NewReader(string(data))
		}
		h := sha256.New()
		n, err := writeEntry(root, dest, os.FileMode(hdr.Mode&0o755|0o600), io.TeeReader(&bombGuard{r: src, cr: cr, base: written, lim: lim}, h))
		written += n
		if err != nil {
			return nil, 0, fmt.Errorf("unpack %s: %w", hdr.Name, err)
		}
		if ok := strings.HasPrefix(name, ProjectDir+"/"); ok {
			f, listed := want[dest]
			if !listed || f.SHA256 != "sha256:"+hex.EncodeToString(h.Sum(nil)) {
				return nil, 0, fmt.Errorf("%w: project file %s is not the one its manifest describes", ErrNotBundle, dest)
			}
			files++
		}
	}
	if m == nil {
		return nil, 0, fmt.Errorf("%w: it is empty", ErrNotBundle)
	}
	if files != len(m.Files) {
		return nil, 0, fmt.Errorf("%w: its manifest lists %d project files, it holds %d", ErrNotBundle, len(m.Files), files)
	}
	return m, files, nil
}

// entryName checks a tar entry: a regular file or folder whose name is a
// local slash path (no "..", not absolute, no empty or "." elements).
func entryName(hdr *tar.Header) (string, error) {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	default:
		return "", fmt.Errorf("%w: entry %q is not a regular file or folder (type %q): links and devices are refused", ErrNotBundle, hdr.Name, hdr.Typeflag)
	}
	name := strings.TrimSuffix(hdr.Name, "/")
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) || strings.Contains(name, `\`) {
		return "", fmt.Errorf("%w: entry %q has no local path", ErrNotBundle, hdr.Name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return "", fmt.Errorf("%w: entry %q has no local path", ErrNotBundle, hdr.Name)
		}
	}
	return name, nil
}

func readManifest(tr io.Reader, hdr *tar.Header) (*api.BundleManifest, error) {
	if hdr.Size > maxManifest {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrLimit, ManifestName, maxManifest)
	}
	data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	var m api.BundleManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotBundle, ManifestName, err)
	}
	if m.Format != api.BundleFormat {
		return nil, fmt.Errorf("%w: format %q, this server reads %q", ErrNotBundle, m.Format, api.BundleFormat)
	}
	return &m, nil
}

// writeEntry makes the file dest (refusing one that exists) and copies src
// into it.
func writeEntry(root *os.Root, dest string, perm os.FileMode, src io.Reader) (int64, error) {
	f, err := root.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// bombGuard fails a read once the bytes unpacked outgrow the compressed
// bytes read by more than lim.MaxRatio to one.
type bombGuard struct {
	r    io.Reader
	cr   *countingReader
	base int64
	n    int64
	lim  Limits
}

func (b *bombGuard) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	total := b.base + b.n
	if total > b.lim.MaxBytes {
		return n, fmt.Errorf("%w: more than %d bytes unpacked", ErrLimit, b.lim.MaxBytes)
	}
	if total > b.lim.MaxRatio*b.cr.n+b.lim.Slack {
		return n, fmt.Errorf("%w: it unpacks to more than %d times its size (a decompression bomb?)", ErrLimit, b.lim.MaxRatio)
	}
	return n, err
}

// ReadManifest reads the manifest at the head of bundle r.
func ReadManifest(r io.Reader) (*api.BundleManifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not gzip: %v", ErrNotBundle, err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	if hdr.Name != ManifestName || hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: its first entry is %q, not %s", ErrNotBundle, hdr.Name, ManifestName)
	}
	return readManifest(tr, hdr)
}
