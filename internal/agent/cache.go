package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/guest"
)

// ErrBadHash: a file's content does not match the sha256 it was sent as,
// or the name is not a sha256.
var ErrBadHash = errors.New("content does not match its sha256")

// fileCache is the client's content-addressed store of the files the main
// pushed: <data>/cache/files/<sha256>. A file is there complete or not at
// all (written to a temporary name, verified, then renamed).
type fileCache struct{ dir string }

func validHash(h string) bool {
	if len(h) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && h == strings.ToLower(h)
}

// path is where the file of hash lives.
func (c fileCache) path(hash string) string { return filepath.Join(c.dir, hash) }

// has reports whether the file of hash is in the cache.
func (c fileCache) has(hash string) (bool, error) {
	if !validHash(hash) {
		return false, fmt.Errorf("%q: %w", hash, ErrBadHash)
	}
	fi, err := os.Stat(c.path(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Mode().IsRegular(), nil
}

// put stores the content read from r as hash, verifying it. Files are kept
// executable: a pushed setup script runs as it would on the main, and the
// content address cannot carry a mode.
func (c fileCache) put(hash string, r io.Reader) error {
	if !validHash(hash) {
		return fmt.Errorf("%q: %w", hash, ErrBadHash)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, "."+hash+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	sum := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, sum), r); err != nil {
		return fmt.Errorf("receive %s: %w", hash, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != hash {
		return fmt.Errorf("file sent as %s has sha256 %s: %w", hash, got, ErrBadHash)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.path(hash)); err != nil {
		return err
	}
	return atomicfile.SyncDir(c.dir)
}

// cachedFiles are a deployment's files as a client host's drivers reach
// them: the refs a request names, resolved through its ref→sha256 map to
// the cache.
type cachedFiles struct {
	cache fileCache
	refs  map[string]string
	work  string
}

var _ guest.Files = cachedFiles{}

// Path implements guest.Files.
func (f cachedFiles) Path(ctx context.Context, ref string) (string, error) {
	hash, ok := f.refs[ref]
	if !ok {
		return "", fmt.Errorf("file %s was not sent to this host: %w", ref, fs.ErrNotExist)
	}
	present, err := f.cache.has(hash)
	if err != nil {
		return "", fmt.Errorf("file %s: %w", ref, err)
	}
	if !present {
		return "", fmt.Errorf("file %s (sha256 %s) is not in this host's cache: %w", ref, hash, fs.ErrNotExist)
	}
	return f.cache.path(hash), nil
}

// WorkDir implements guest.Files.
func (f cachedFiles) WorkDir() string { return f.work }
