package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Adopt keeps the file at path, whose content has sha256 sum (checked by
// the caller: a copy pushed by the main, verified on arrival), as the
// image name, the way Import does, without reading it again: it is linked
// into the cache when it is on the same file system, copied (and checked)
// otherwise. An entry of name with that content already is left as it is.
func (s *Store) Adopt(ctx context.Context, name, path, sum string) (Entry, error) {
	if !ValidName(name) {
		return Entry{}, fmt.Errorf("%w: %q", ErrName, name)
	}
	sum = strings.ToLower(sum)
	unlock := s.lockName(name)
	defer unlock()
	if e, ok, err := s.Entry(name); err != nil || (ok && e.SHA256 == sum) {
		return e, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return Entry{}, fmt.Errorf("image %s: %w", name, err)
	}
	if _, err := os.Stat(s.BlobPath(sum)); err != nil {
		if err := s.linkBlob(ctx, path, sum); err != nil {
			return Entry{}, fmt.Errorf("image %s: %w", name, err)
		}
	}
	e := Entry{Name: name, SHA256: sum, Size: info.Size(), Fetched: time.Now().UTC()}
	if err := s.edit(func(idx map[string]Entry) error { idx[name] = e; return nil }); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// linkBlob puts the file at path under the content address sum.
func (s *Store) linkBlob(ctx context.Context, path, sum string) error {
	if err := s.mkdirs(); err != nil {
		return err
	}
	tmp := filepath.Join(s.blobDir(), ".adopt-"+sum)
	os.Remove(tmp)
	if err := os.Link(path, tmp); err == nil {
		return s.commit(tmp, sum)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, _, err = s.store(ctx, f, sum)
	return err
}
