package testbedos

import (
	"context"
	"io"
)

// Images lists the server's VM images: name, url, sha256, size and the
// deployments whose disks are made from each.
func (c *Client) Images(ctx context.Context) ([]Image, error) { return c.c.Images(ctx) }

// ImportImage streams r to the server as the image name (a cloud_image of
// that name then needs no download); sha256, when not empty, is checked.
func (c *Client) ImportImage(ctx context.Context, name string, r io.Reader, sha256 string) (Image, error) {
	return c.c.ImportImage(ctx, name, r, sha256)
}

// DeleteImage removes an image; refused while a deployment's disks are
// made from it.
func (c *Client) DeleteImage(ctx context.Context, name string) error {
	return c.c.DeleteImage(ctx, name)
}
