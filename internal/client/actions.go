package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/testbedos/testbedos/internal/api"
)

// Actions returns one page of deployment name's actions, newest first:
// limit of them (0: the server's default) after skipping offset.
func (c *Client) Actions(ctx context.Context, name string, limit, offset int) (api.ActionPage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if offset > 0 {
		q.Set("offset", fmt.Sprint(offset))
	}
	path := "/api/deployments/" + url.PathEscape(name) + "/actions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.ActionPage
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}
