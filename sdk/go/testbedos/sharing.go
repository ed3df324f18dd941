package testbedos

import (
	"context"
	"encoding/json"
	"io"
)

// GraphFile returns the deployment's topology in format: "json", "dot"
// (Graphviz), "mermaid" or "svg" (the GUI's picture).
func (c *Client) GraphFile(ctx context.Context, name, format string) ([]byte, error) {
	return c.c.Graph(ctx, name, format)
}

// Inventory returns the deployment's guests in format: "json", "ansible"
// (a YAML inventory), "ssh-config" or "hosts" (/etc/hosts lines).
func (c *Client) Inventory(ctx context.Context, name, format string) ([]byte, error) {
	return c.c.Inventory(ctx, name, format)
}

// Export opens the deployment's bundle (.tar.gz: project files, state,
// action logs, impairments, image digests) as the server streams it.
func (c *Client) Export(ctx context.Context, name string) (io.ReadCloser, error) {
	return c.c.Export(ctx, name)
}

// Import makes a new deployment from a bundle, named name (the bundle's
// when empty); the result names the images this server lacks.
func (c *Client) Import(ctx context.Context, bundle io.Reader, name string) (ImportResult, error) {
	return c.c.Import(ctx, bundle, name)
}

// Graph returns the deployment's topology as nodes (guests, switches,
// routers) and edges (one per guest interface or router port).
func (c *Client) Graph(ctx context.Context, name string) (Graph, error) {
	var g Graph
	data, err := c.c.Graph(ctx, name, "json")
	if err != nil {
		return g, err
	}
	return g, json.Unmarshal(data, &g)
}
