package guest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/topology"
)

// MountFiles is Files that can also hand out folders of the deployment, to
// bind-mount into a container. Files of a client host (copies of single
// files) are not.
type MountFiles interface {
	// OpenMount opens the deployment file or folder ref, which must lie
	// inside the project folder without a symlink leading out of it, as an
	// O_PATH descriptor: what is mounted is what was checked, whatever the
	// path names a moment later.
	OpenMount(ctx context.Context, ref string) (*os.File, error)
}

var _ MountFiles = ProjectFiles{}

// OpenMount implements MountFiles: ref must be a regular file or a folder
// inside the project folder.
func (p ProjectFiles) OpenMount(ctx context.Context, ref string) (*os.File, error) {
	f, err := topology.OpenBeneath(p.Project, p.abs(ref), unix.O_PATH)
	if errors.Is(err, topology.ErrEscapes) {
		return nil, fmt.Errorf("file %s is %w %s", ref, ErrOutsideProject, p.Project)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("file %s is neither a regular file nor a folder: %w", ref, fs.ErrInvalid)
	}
	return f, nil
}
