package client

import (
	"context"
	"io"
	"net/http"
)

// Do sends a request to path (with its query) and decodes the JSON answer
// into out: nil drops it, a *[]byte takes it as it came. A non-nil body is
// sent as JSON. Error answers are *Error. It serves routes this package
// has no method of its own for (the public SDK builds on it).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, method, path, body, out)
}

// DoRaw is Do with a body sent as it is, of contentType.
func (c *Client) DoRaw(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	return c.do(ctx, method, path, rawBody{r: body, contentType: contentType}, out)
}

// Open sends a GET to path and returns the answer's body to stream.
func (c *Client) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
