package docker

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/testbedos/testbedos/internal/guest"
)

// pinner pins the volume sources a guest's config opened onto a private
// folder of the guest, <dir>/<deployment>/<guest>/<n>, which is what
// docker is given (see guest.Pin).
type pinner struct {
	dir        string
	deployment string
	guest      string
}

// guestDir is the guest's private folder of pinned sources.
func (p pinner) guestDir() string { return filepath.Join(p.dir, p.deployment, p.guest) }

// pin pins the file or folder open in f as the guest's n-th volume source
// and returns the path docker mounts.
func (p pinner) pin(n int, f *os.File) (string, error) {
	target := filepath.Join(p.guestDir(), strconv.Itoa(n))
	if err := guest.Pin(f, target); err != nil {
		return "", err
	}
	return target, nil
}

// unpin removes every pinned source of the guest.
func (p pinner) unpin() error {
	err := guest.Unpin(p.guestDir())
	if err == nil {
		_ = os.Remove(filepath.Dir(p.guestDir())) // the deployment's, when empty
	}
	return err
}
