// Package images is the server's cache of VM images: content-addressed
// files (<dir>/sha256/<hex>) and an index that names them (the YAML's
// cloud_image name, or one made from the URL) with the URL they came from,
// their sha256, size and what the server last saw of the upstream file
// (ETag, Last-Modified, length), so a changed upstream image is noticed.
// Images arrive by download (Resolve) or import (Import); the original's
// <data>/images/<name>.img is taken in as an import the first time a guest
// asks for that name.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
)

// Errors callers branch on.
var (
	ErrUnknown = api.Categorized(api.ErrNotFound, "no such image")
	ErrInUse   = api.Categorized(api.ErrConflict, "the image is in use")
	ErrName    = api.Categorized(api.ErrBadRequest, "bad image name")
	ErrDigest  = api.Categorized(api.ErrInvalid, "image digest mismatch")
)

// Entry is one named image of the index.
type Entry struct {
	Name   string `json:"name"`
	URL    string `json:"url,omitempty"` // empty: imported
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// What the server saw of the upstream file when it downloaded it.
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Fetched      time.Time `json:"fetched"`
}

// Options configure a Store.
type Options struct {
	// Dir is the cache folder (<data>/cache/images).
	Dir string
	// Legacy is the original's folder of named images (<data>/images):
	// <name>.img there is taken in when a guest asks for name.
	Legacy string
	// DisksDir holds the deployments' disk folders (<data>/disks): a disk
	// whose backing file is an image uses it.
	DisksDir string
}

// Store is the image cache. Safe for concurrent use, within one process.
type Store struct {
	opts Options
	mu   sync.Mutex // the index file
	// fetch serialises the work on one name.
	fetchMu sync.Mutex
	fetches map[string]*sync.Mutex
}

// New returns the store of opts.Dir; folders are made when first written.
func New(opts Options) *Store {
	return &Store{opts: opts, fetches: map[string]*sync.Mutex{}}
}

// Dir is the cache folder.
func (s *Store) Dir() string { return s.opts.Dir }

func (s *Store) indexPath() string { return filepath.Join(s.opts.Dir, "index.json") }
func (s *Store) blobDir() string   { return filepath.Join(s.opts.Dir, "sha256") }

// BlobPath is the file of an image's content.
func (s *Store) BlobPath(sum string) string { return filepath.Join(s.blobDir(), sum) }

// ValidName: a name is a plain file name of letters, digits, '.', '-', '_'.
func ValidName(name string) bool {
	if name == "" || len(name) > 128 || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (s *Store) lockName(name string) func() {
	s.fetchMu.Lock()
	m, ok := s.fetches[name]
	if !ok {
		m = &sync.Mutex{}
		s.fetches[name] = m
	}
	s.fetchMu.Unlock()
	m.Lock()
	return m.Unlock
}

func (s *Store) readIndex() (map[string]Entry, error) {
	data, err := os.ReadFile(s.indexPath())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	idx := map[string]Entry{}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("image index %s: %w", s.indexPath(), err)
	}
	return idx, nil
}

// edit changes the index under its lock and writes it crash-safely.
func (s *Store) edit(fn func(map[string]Entry) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := s.mkdirs(); err != nil {
		return err
	}
	return atomicfile.Write(s.indexPath(), append(data, '\n'), 0o644)
}

// Entry returns the named entry.
func (s *Store) Entry(name string) (Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := idx[name]
	if ok {
		if _, err := os.Stat(s.BlobPath(e.SHA256)); err != nil {
			return Entry{}, false, nil
		}
	}
	return e, ok, nil
}

// mkdirs makes the cache folders, readable by QEMU's user.
func (s *Store) mkdirs() error {
	for _, d := range []string{s.opts.Dir, s.blobDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("image cache: %w", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("image cache: %w", err)
		}
	}
	return nil
}

// List returns every image, sorted by name, with the deployments whose
// disks use it.
func (s *Store) List(ctx context.Context) ([]api.Image, error) {
	s.mu.Lock()
	idx, err := s.readIndex()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	users := s.users()
	out := make([]api.Image, 0, len(idx))
	for _, e := range idx {
		out = append(out, e.listed(users[e.SHA256]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (e Entry) listed(users []string) api.Image {
	if users == nil {
		users = []string{}
	}
	return api.Image{Name: e.Name, URL: e.URL, SHA256: e.SHA256, Size: e.Size, Stored: e.Fetched, UsedBy: users}
}

// Import stores r's content under name (replacing what the name held);
// sum, when not empty, must be its sha256.
func (s *Store) Import(ctx context.Context, name string, r io.Reader, sum string) (api.Image, error) {
	if !ValidName(name) {
		return api.Image{}, fmt.Errorf("%w: %q (letters, digits, '.', '-', '_')", ErrName, name)
	}
	unlock := s.lockName(name)
	defer unlock()
	got, n, err := s.store(ctx, r, sum)
	if err != nil {
		return api.Image{}, err
	}
	e := Entry{Name: name, SHA256: got, Size: n, Fetched: time.Now().UTC()}
	if err := s.edit(func(idx map[string]Entry) error { idx[name] = e; return nil }); err != nil {
		return api.Image{}, err
	}
	return e.listed(s.users()[got]), nil
}

// store writes r into the content-addressed folder, through a temporary
// file, and returns its sha256 and size.
func (s *Store) store(ctx context.Context, r io.Reader, want string) (string, int64, error) {
	if err := s.mkdirs(); err != nil {
		return "", 0, err
	}
	tmp, err := os.CreateTemp(s.blobDir(), ".import-*")
	if err != nil {
		return "", 0, fmt.Errorf("image cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", n, fmt.Errorf("image cache: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && !strings.EqualFold(want, sum) {
		return "", n, fmt.Errorf("%w: sha256 is %s, want %s", ErrDigest, sum, strings.ToLower(want))
	}
	if err := s.commit(tmp.Name(), sum); err != nil {
		return "", n, err
	}
	return sum, n, nil
}

// commit moves a finished temporary file to its content address.
func (s *Store) commit(tmp, sum string) error {
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.BlobPath(sum)); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	return atomicfile.SyncDir(s.blobDir())
}

// Remove deletes the named image; ErrInUse while a deployment's disk is
// made from it. Its content goes when no other name holds it.
func (s *Store) Remove(ctx context.Context, name string) error {
	unlock := s.lockName(name)
	defer unlock()
	var sum string
	err := s.edit(func(idx map[string]Entry) error {
		e, ok := idx[name]
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknown, name)
		}
		if users := s.users()[e.SHA256]; len(users) > 0 {
			return fmt.Errorf("%w: %s is the base of the disks of %s (down them first)", ErrInUse, name, strings.Join(users, ", "))
		}
		delete(idx, name)
		for _, o := range idx {
			if o.SHA256 == e.SHA256 {
				return nil
			}
		}
		sum = e.SHA256
		return nil
	})
	if err != nil || sum == "" {
		return err
	}
	if err := os.Remove(s.BlobPath(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
