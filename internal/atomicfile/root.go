package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Root writes files crash-safely inside one folder, through an os.Root: no
// write ever follows a symlink out of the folder, whatever a user put there.
type Root struct {
	dir  string
	root *os.Root
}

// OpenRoot opens dir, which must be a folder, as a Root.
func OpenRoot(dir string) (*Root, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{dir: filepath.Clean(dir), root: r}, nil
}

// Sub opens the folder name inside r (made when missing) as a Root of its
// own; name may not lead out of r.
func (r *Root) Sub(name string, perm fs.FileMode) (*Root, error) {
	rel, err := r.rel(name)
	if err != nil {
		return nil, err
	}
	if err := r.root.MkdirAll(rel, perm); err != nil {
		return nil, fmt.Errorf("make %s: %w", r.abs(rel), err)
	}
	sub, err := r.root.OpenRoot(rel)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.abs(rel), err)
	}
	return &Root{dir: r.abs(rel), root: sub}, nil
}

// Dir is the folder's path.
func (r *Root) Dir() string { return r.dir }

// Close releases the folder.
func (r *Root) Close() error { return r.root.Close() }

// rel turns name, absolute inside the folder or relative to it, into a
// relative path; os.Root then refuses any way out.
func (r *Root) rel(name string) (string, error) {
	if !filepath.IsAbs(name) {
		return filepath.Clean(name), nil
	}
	rel, err := filepath.Rel(r.dir, filepath.Clean(name))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside %s", name, r.dir)
	}
	return rel, nil
}

func (r *Root) abs(rel string) string { return filepath.Join(r.dir, rel) }

// MkdirAll makes the folder name and its parents inside the root.
func (r *Root) MkdirAll(name string, perm fs.FileMode) error {
	rel, err := r.rel(name)
	if err != nil {
		return err
	}
	if err := r.root.MkdirAll(rel, perm); err != nil {
		return fmt.Errorf("make %s: %w", r.abs(rel), err)
	}
	return nil
}

// Remove deletes the file name; a missing one is fine.
func (r *Root) Remove(name string) error {
	rel, err := r.rel(name)
	if err != nil {
		return err
	}
	if err := r.root.Remove(rel); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Write replaces the file name with data like Write: a temporary file in the
// same folder, synced, renamed over name, the folder synced. A symlink at
// name is replaced, never followed.
func (r *Root) Write(name string, data []byte, perm fs.FileMode) (err error) {
	rel, err := r.rel(name)
	if err != nil {
		return err
	}
	dir, base := filepath.Split(rel)
	if dir == "" {
		dir = "."
	}
	var suffix [6]byte
	rand.Read(suffix[:])
	tmpRel := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(suffix[:]))
	tmp, err := r.root.OpenFile(tmpRel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", r.abs(rel), err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			r.root.Remove(tmpRel)
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", r.abs(rel), err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", r.abs(rel), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", r.abs(rel), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", r.abs(rel), err)
	}
	if err = r.root.Rename(tmpRel, rel); err != nil {
		return fmt.Errorf("write %s: %w", r.abs(rel), err)
	}
	d, err := r.root.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", r.abs(dir), err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", r.abs(dir), err)
	}
	return nil
}
