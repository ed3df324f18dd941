package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// NewProjectDir makes a fresh project folder for deployment name under
// root: <root>/<name>, or <root>/<name>-2, -3, … when an earlier
// deployment's folder is still there (nothing of it may leak into the new
// one). Deployments created from the GUI and imported from bundles get
// their folders this way.
func NewProjectDir(root, name string) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	for i := 1; i <= 1000; i++ {
		dir := filepath.Join(root, name)
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", dir, i)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: every folder name for %s is taken", root, name)
}
