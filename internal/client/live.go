package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/wsterm"
)

func guestPath(name, guest string) string {
	return "/api/deployments/" + url.PathEscape(name) + "/guests/" + url.PathEscape(guest)
}

func ifacePath(name, guest, iface string) string {
	return guestPath(name, guest) + "/interfaces/" + url.PathEscape(iface)
}

// Exec runs a command in a guest and returns its exit status and output.
func (c *Client) Exec(ctx context.Context, name, guest string, req api.ExecRequest) (api.ExecResult, error) {
	var out api.ExecResult
	err := c.do(ctx, http.MethodPost, guestPath(name, guest)+"/exec", req, &out)
	return out, err
}

// Impairment reads the run-time setting of a guest interface.
func (c *Client) Impairment(ctx context.Context, name, guest, iface string) (api.InterfaceImpairment, error) {
	var out api.InterfaceImpairment
	err := c.do(ctx, http.MethodGet, ifacePath(name, guest, iface), nil, &out)
	return out, err
}

// SetImpairment replaces the run-time setting of a guest interface.
func (c *Client) SetImpairment(ctx context.Context, name, guest, iface string, imp api.Impairment) (api.InterfaceImpairment, error) {
	var out api.InterfaceImpairment
	err := c.do(ctx, http.MethodPut, ifacePath(name, guest, iface), imp, &out)
	return out, err
}

// Capture opens the pcap stream of a guest interface; filter may be empty.
// Closing the stream (or ending ctx) ends the capture.
func (c *Client) Capture(ctx context.Context, name, guest, iface, filter string) (io.ReadCloser, error) {
	path := ifacePath(name, guest, iface) + "/capture"
	if filter != "" {
		path += "?filter=" + url.QueryEscape(filter)
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Console is an open terminal session with a guest: Read what it shows
// (io.EOF once the session ended), Write keys, Resize, Close.
type Console struct {
	*wsterm.Client
}

// OpenConsole opens the console websocket of a guest.
func (c *Client) OpenConsole(ctx context.Context, name, guest string) (*Console, error) {
	if c.tlsErr != nil {
		return nil, c.tlsErr
	}
	wsURL := strings.Replace(c.base, "http", "ws", 1) + guestPath(name, guest) + "/console"
	header := http.Header{}
	if c.token != "" {
		header.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			msg := "cannot open the console of " + guest
			if resp.Body != nil {
				data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
				var eb api.ErrorBody
				if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
					msg = eb.Error.Message
				}
			}
			return nil, &Error{Status: resp.StatusCode, Message: msg}
		}
		return nil, fmt.Errorf("console of %s: %w", guest, err)
	}
	conn.SetReadLimit(1 << 20)
	return &Console{Client: wsterm.NewClient(ctx, conn)}, nil
}
