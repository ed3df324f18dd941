package client

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// filePath is the route of one project file: each segment escaped, the
// slashes kept.
func filePath(name, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/api/deployments/" + url.PathEscape(name) + "/files/" + strings.Join(segs, "/")
}

// ProjectFiles lists the regular files of a deployment's project folder.
func (c *Client) ProjectFiles(ctx context.Context, name string) (api.ProjectFiles, error) {
	var out api.ProjectFiles
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/files", nil, &out)
	return out, err
}

// ReadProjectFile returns one file of a deployment's project folder (path
// relative to it, with slashes).
func (c *Client) ReadProjectFile(ctx context.Context, name, path string) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, filePath(name, path), nil, &out)
	return out, err
}

// WriteProjectFile writes one file of a deployment's project folder (made
// with its folders when missing, replaced atomically when there).
func (c *Client) WriteProjectFile(ctx context.Context, name, path string, data []byte) (api.ProjectFile, error) {
	var out api.ProjectFile
	err := c.do(ctx, http.MethodPut, filePath(name, path), rawBody{r: bytes.NewReader(data), contentType: "application/octet-stream"}, &out)
	return out, err
}

// DeleteProjectFile removes one file of a deployment's project folder.
func (c *Client) DeleteProjectFile(ctx context.Context, name, path string) error {
	return c.do(ctx, http.MethodDelete, filePath(name, path), nil, nil)
}
