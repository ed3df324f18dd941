package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// Images lists the server's VM images.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var out []api.Image
	err := c.do(ctx, http.MethodGet, "/api/images", nil, &out)
	return out, err
}

// ImportImage streams r to the server as the image name; sha256, when not
// empty, is checked by the server.
func (c *Client) ImportImage(ctx context.Context, name string, r io.Reader, sha256 string) (api.Image, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("name", name)
		if err == nil && sha256 != "" {
			err = mw.WriteField("sha256", sha256)
		}
		var fw io.Writer
		if err == nil {
			fw, err = mw.CreateFormFile("file", name)
		}
		if err == nil {
			_, err = io.Copy(fw, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/images", pr)
	if err != nil {
		pr.Close()
		return api.Image{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.tlsErr != nil {
		pr.Close()
		return api.Image{}, c.tlsErr
	}
	resp, err := c.http.Do(req)
	if err != nil {
		pr.Close()
		return api.Image{}, fmt.Errorf("cannot reach the server: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			return api.Image{}, &Error{Status: resp.StatusCode, Message: eb.Error.Message}
		}
		return api.Image{}, &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	}
	var out api.Image
	return out, json.Unmarshal(data, &out)
}

// DeleteImage removes an image (409 while a deployment's disks use it).
func (c *Client) DeleteImage(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/images/"+url.PathEscape(name), nil, nil)
}
