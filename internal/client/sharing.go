package client

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"

	"github.com/testbedos/testbedos/internal/api"
)

// rawBody is a request body sent as it is, with its content type.
type rawBody struct {
	r           io.Reader
	contentType string
}

// Graph returns the deployment's topology in format: json, dot, mermaid or
// svg ("" is json).
func (c *Client) Graph(ctx context.Context, name, format string) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/graph"+formatQuery(format), nil, &out)
	return out, err
}

// Inventory returns the deployment's guests in format: json, ansible,
// ssh-config or hosts ("" is json).
func (c *Client) Inventory(ctx context.Context, name, format string) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/inventory"+formatQuery(format), nil, &out)
	return out, err
}

func formatQuery(format string) string {
	if format == "" {
		return ""
	}
	return "?format=" + url.QueryEscape(format)
}

// Export opens the deployment's bundle (a .tar.gz) as the server streams
// it; reading fails, rather than ending early, if the export breaks off.
func (c *Client) Export(ctx context.Context, name string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/deployments/"+url.PathEscape(name)+"/export", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Import makes a new deployment from a bundle read from r, named name (the
// bundle's name when empty). The result names every image of the bundle
// that this server lacks, with its digest.
func (c *Client) Import(ctx context.Context, bundle io.Reader, name string) (api.ImportResult, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if name != "" {
				if err := mw.WriteField("name", name); err != nil {
					return err
				}
			}
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="bundle"; filename="bundle.tar.gz"`)
			h.Set("Content-Type", "application/gzip")
			w, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, bundle); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var out api.ImportResult
	err := c.do(ctx, http.MethodPost, "/api/deployments/import", rawBody{r: pr, contentType: mw.FormDataContentType()}, &out)
	pr.Close()
	return out, err
}
