package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// browserResolve is where a browser goes for a Location header: the URL
// parser of the WHATWG spec drops tabs and newlines anywhere and reads a
// backslash as a slash in http(s) URLs.
func browserResolve(t *testing.T, base, loc string) *url.URL {
	t.Helper()
	loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(strings.TrimSpace(loc))
	b, _ := url.Parse(base)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q does not parse: %v", loc, err)
	}
	return b.ResolveReference(u)
}

// The login's next must not send the browser to another site, however the
// path is spelled (open redirect).
func TestLoginNextStaysOnServer(t *testing.T) {
	for _, next := range []string{
		"/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/\t\\evil.example",
		"\t//evil.example", "/ /evil.example", "/%09/evil.example", "/\x00/evil.example",
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "http://lab.test/login", nil)
		http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
		got := browserResolve(t, "http://lab.test/login", w.Header().Get("Location"))
		if got.Host != "lab.test" {
			t.Errorf("next %q: Location %q takes the browser to %s", next, w.Header().Get("Location"), got)
		}
	}
}
