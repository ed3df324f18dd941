package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLogText(t *testing.T) {
	big := strings.Repeat(strings.Repeat("x", 1023)+"\n", 70<<10) // 70 MiB
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
		wantErr bool
	}{
		{"a log larger than any answer comes whole", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write([]byte(big))
		}, big, false},
		{"a transfer that breaks off is an error", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("only part\n"))
		}, "", true},
		{"an error answer is an error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"no such action"}}`, http.StatusNotFound)
		}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c, err := New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.LogText(context.Background(), "id")
			if (err != nil) != tc.wantErr {
				t.Fatalf("LogText error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Fatalf("LogText returned %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

func TestNewAddress(t *testing.T) {
	for _, tc := range []struct{ server, network, address string }{
		{"http://localhost:3355", "tcp", "localhost:3355"},
		{"http://example.org", "tcp", "example.org:80"},
		{"https://example.org/", "tcp", "example.org:443"},
		{"unix:///run/x.sock", "unix", "/run/x.sock"},
		{"/run/x.sock", "unix", "/run/x.sock"},
	} {
		c, err := New(tc.server)
		if err != nil {
			t.Fatalf("New(%q): %v", tc.server, err)
		}
		if c.network != tc.network || c.address != tc.address {
			t.Errorf("New(%q) dials %s %s, want %s %s", tc.server, c.network, c.address, tc.network, tc.address)
		}
	}
}

func TestConnectTakesTheFirstThatAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	missing := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	c, err := Connect(context.Background(), []string{missing, closed, srv.URL}, func(c *Client) []Option {
		return []Option{WithToken("tok")}
	})
	if err != nil || c.Server() != srv.URL || c.token != "tok" || !c.IsTCP() {
		t.Fatalf("Connect = %+v, %v; want the httptest server with the token", c, err)
	}

	_, err = Connect(context.Background(), []string{missing, closed}, nil)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Connect to nothing: %v, want an UnreachableError", err)
	}
	for _, want := range []string{missing + " (no such socket)", closed + " (connection refused)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
