package cloudimage

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServe: the image is served with its length and Last-Modified, HEAD
// and ranges work, and only GETs are counted.
func TestServe(t *testing.T) {
	file := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(file, []byte("0123456789"), 0o644)
	img, err := describe(file)
	if err != nil || img.Size != 10 || len(img.SHA256) != 64 {
		t.Fatalf("describe: %+v %v", img, err)
	}
	s, err := Serve(img)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Head(s.ImageURL())
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 10 || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("HEAD: %+v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.ImageURL(), nil)
	req.Header.Set("Range", "bytes=4-")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(body) != "456789" {
		t.Fatalf("range: %d %q", resp.StatusCode, body)
	}
	if n := s.GETs("/" + FileName); n != 1 {
		t.Fatalf("GETs = %d", n)
	}
	if resp, _ := http.Get(s.URL + "/other"); resp == nil || resp.StatusCode != 404 {
		t.Fatalf("unknown path: %v", resp)
	}
	if len(Hash()) != 64 || strings.Trim(Hash(), "0123456789abcdef") != "" {
		t.Fatalf("recipe hash %q", Hash())
	}
}
