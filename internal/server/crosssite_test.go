package server

import (
	"net/http"
	"strings"
	"testing"
)

// Without auth (development), a web page of another site must still not
// drive the API from the developer's browser: a cross-site form can POST a
// body that decodes as JSON (enctype text/plain). Unsafe requests that
// carry a foreign Origin are refused; scripts send none.
func TestNoAuthRefusesCrossSiteUnsafeRequests(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, method, origin string
		want                 int
	}{
		{"script without origin", "POST", "", 200},
		{"our own page", "POST", e.ts.URL, 200},
		{"another site", "POST", "http://evil.example", 403},
		{"an opaque origin", "POST", "null", 403},
		{"another site reading", "GET", "http://evil.example", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/api/validate/yaml"
			if tc.method == "GET" {
				path = "/api/deployments"
			}
			req, _ := http.NewRequest(tc.method, e.ts.URL+path, strings.NewReader("machines: [{name: a}]\n"))
			req.Header.Set("Content-Type", "text/plain")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s with Origin %q: %d, want %d", tc.method, path, tc.origin, resp.StatusCode, tc.want)
			}
		})
	}
}
