package client

import (
	"context"
	"net/http"
	"net/http/httptest"
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
