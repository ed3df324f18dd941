package testbedos

import "context"

// ProjectFiles lists the regular files of a deployment's project folder
// (hidden ones left out).
func (c *Client) ProjectFiles(ctx context.Context, name string) (ProjectFiles, error) {
	return c.c.ProjectFiles(ctx, name)
}

// ReadProjectFile returns one file of a deployment's project folder; path
// is relative to the folder, with slashes ("scripts/setup.sh").
func (c *Client) ReadProjectFile(ctx context.Context, name, path string) ([]byte, error) {
	return c.c.ReadProjectFile(ctx, name, path)
}

// WriteProjectFile writes one file of a deployment's project folder: made
// with its folders when missing, replaced atomically when there; a file
// that starts with #! is made executable.
func (c *Client) WriteProjectFile(ctx context.Context, name, path string, data []byte) (ProjectFile, error) {
	return c.c.WriteProjectFile(ctx, name, path, data)
}

// DeleteProjectFile removes one file of a deployment's project folder
// (never kvm-compose.yaml).
func (c *Client) DeleteProjectFile(ctx context.Context, name, path string) error {
	return c.c.DeleteProjectFile(ctx, name, path)
}
