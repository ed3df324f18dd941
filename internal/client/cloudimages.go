package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// ImageCacheJSON is GET /api/images as the server sends it: the images
// its cache holds.
func (c *Client) ImageCacheJSON(ctx context.Context) (json.RawMessage, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/api/images", nil, &out)
	return out, err
}
