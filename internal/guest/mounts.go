package guest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/testbedos/testbedos/internal/topology"
)

// MountFiles is Files that can also hand out folders of the deployment, to
// bind-mount into a container. Files of a client host (copies of single
// files) are not.
type MountFiles interface {
	// MountPath returns a path on this host holding the deployment file or
	// folder ref, which must lie, after symlinks, inside the project folder.
	MountPath(ctx context.Context, ref string) (string, error)
}

var _ MountFiles = ProjectFiles{}

// MountPath implements MountFiles: ref must be, after symlinks, a regular
// file or a folder inside the project folder.
func (p ProjectFiles) MountPath(ctx context.Context, ref string) (string, error) {
	if !filepath.IsAbs(ref) {
		ref = filepath.Join(p.Project, ref)
	}
	real, err := filepath.EvalSymlinks(ref)
	if err != nil {
		return "", fmt.Errorf("file %s: %w", ref, err)
	}
	if !topology.Within(p.Project, real) {
		return "", fmt.Errorf("file %s is %w %s", ref, ErrOutsideProject, p.Project)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("file %s: %w", ref, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return "", fmt.Errorf("file %s is neither a regular file nor a folder: %w", ref, fs.ErrInvalid)
	}
	return real, nil
}
