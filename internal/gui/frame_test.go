package gui

import (
	"net/http"
	"strings"
	"testing"
)

// No page may be framed by another page (clickjacking the action buttons
// of a logged-in browser from a page of the same site).
func TestPagesRefuseFraming(t *testing.T) {
	ts, _, _ := newTestGUI(t, Options{})
	for _, path := range []string{"/", "/deployments", "/deployments/new", "/deployments/nope", "/login"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: Content-Security-Policy %q, X-Frame-Options %q: the page may be framed", path, csp, resp.Header.Get("X-Frame-Options"))
		}
	}
}
