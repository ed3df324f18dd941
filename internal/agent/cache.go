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

	"golang.org/x/sys/unix"

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

// partialPath is where the part of hash received so far is kept: an
// upload broken off is resumed from there, never started over.
func (c fileCache) partialPath(hash string) string {
	return filepath.Join(c.dir, partialDir, hash)
}

// partialDir is the cache's folder of partial uploads.
const partialDir = ".partial"

// received is how many bytes of hash a broken upload left.
func (c fileCache) received(hash string) int64 {
	fi, err := os.Stat(c.partialPath(hash))
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}

// errOffset: an upload resumes at another offset than what the cache holds.
var errOffset = errors.New("the upload does not resume where the received part ends")

// put stores the content of hash read from r, which starts at offset of
// the file (0, or what received says a broken upload left) and ends at
// total (-1: at the end of r). What arrives is appended to the partial
// file; once whole, the file's sha256 is checked: a match moves it into
// the cache (executable: a pushed setup script runs as it would on the
// main, and the content address cannot carry a mode), a mismatch deletes
// it. A broken upload keeps its partial file.
func (c fileCache) put(hash string, r io.Reader, offset, total int64) error {
	if !validHash(hash) {
		return fmt.Errorf("%q: %w", hash, ErrBadHash)
	}
	if err := os.MkdirAll(filepath.Join(c.dir, partialDir), 0o700); err != nil {
		return err
	}
	part := c.partialPath(hash)
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	sum := sha256.New()
	if offset == 0 {
		err = f.Truncate(0)
	} else if have := c.received(hash); have != offset {
		return fmt.Errorf("%s: %d bytes received, the upload resumes at %d: %w", hash, have, offset, errOffset)
	} else {
		_, err = io.Copy(sum, io.NewSectionReader(f, 0, offset))
	}
	if err != nil {
		return err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	n, err := copyHashed(&writeBehind{f: f, synced: offset, at: offset}, sum, r)
	if err != nil {
		return fmt.Errorf("receive %s: %w (%d bytes kept to resume from)", hash, err, offset+n)
	}
	if total >= 0 && offset+n != total {
		return fmt.Errorf("receive %s: %d of %d bytes arrived (kept to resume from)", hash, offset+n, total)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != hash {
		f.Close()
		os.Remove(part)
		return fmt.Errorf("file sent as %s has sha256 %s: refused: %w", hash, got, ErrBadHash)
	}
	return c.commit(f, hash)
}

// commit moves the verified partial file f of hash into the cache.
func (c fileCache) commit(f *os.File, hash string) error {
	if err := f.Chmod(0o755); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(c.partialPath(hash), c.path(hash)); err != nil {
		return err
	}
	return atomicfile.SyncDir(c.dir)
}

// writeBehind writes an upload into its file and asks the kernel to start
// writing each writeBehindChunk to disk as soon as it is complete, without
// waiting for it: the disk works while the rest arrives, and the fsync
// before the file enters the cache finds little left to do.
type writeBehind struct {
	f      *os.File
	synced int64 // the file's bytes before this were handed to writeback
	at     int64 // where the next write goes
}

// writeBehindChunk is how much is written before writeback is started.
const writeBehindChunk = 8 << 20

func (w *writeBehind) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.at += int64(n)
	if w.at-w.synced >= writeBehindChunk {
		// Only a hint: the fsync at the end is what makes the file safe.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.synced, w.at-w.synced, unix.SYNC_FILE_RANGE_WRITE)
		w.synced = w.at
	}
	return n, err
}

// copyBuffer is the size of the reads of an upload.
const copyBuffer = 256 << 10

// copyHashed copies r into f and sum; sum is fed in its own goroutine, so
// hashing overlaps the reads and writes of the next block.
func copyHashed(f io.Writer, sum io.Writer, r io.Reader) (int64, error) {
	blocks := make(chan []byte, 2)
	free := make(chan []byte, 3)
	for range 3 {
		free <- make([]byte, copyBuffer)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range blocks {
			sum.Write(b)
			free <- b[:cap(b)]
		}
	}()
	var n int64
	var err error
	for err == nil {
		buf := <-free
		var k int
		k, err = io.ReadFull(r, buf)
		if k > 0 {
			if _, werr := f.Write(buf[:k]); werr != nil {
				err = werr
				break
			}
			n += int64(k)
			blocks <- buf[:k]
		}
	}
	close(blocks)
	<-done
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return n, err
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
		hash, ok = f.cachedPath(ref)
	}
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

// cachedPath: ref is already the cached copy of one of the request's files
// (the guest's spec names the copies on this host, see localGuest).
func (f cachedFiles) cachedPath(ref string) (string, bool) {
	for _, hash := range f.refs {
		if f.cache.path(hash) == ref {
			return hash, true
		}
	}
	return "", false
}

// WorkDir implements guest.Files.
func (f cachedFiles) WorkDir() string { return f.work }
