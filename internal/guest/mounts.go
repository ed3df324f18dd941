package guest

import (
	"context"
	"fmt"
	"io/fs"
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
	ref = p.abs(ref)
	real, fi, err := p.resolve(ref)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return "", fmt.Errorf("file %s is neither a regular file nor a folder: %w", ref, fs.ErrInvalid)
	}
	return real, nil
}
