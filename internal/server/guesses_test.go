package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWrongLoginsAreLockedOut: after five wrong tokens at the login form an
// address gets 429 with Retry-After, even with the right token, for a time
// that doubles with each further guess up to a minute; another address is
// not affected, and once the wait is over the right token logs in and
// clears the count.
func TestWrongLoginsAreLockedOut(t *testing.T) {
	e := newAuthEnv(t)
	now := time.Unix(1000, 0)
	e.srv.guesses.now = func() time.Time { return now }
	login := func(from, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "http://localhost/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = from + ":4000"
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		return rec
	}
	for i := range freeGuesses {
		if rec := login("192.0.2.1", "wrong"); rec.Code != 401 {
			t.Fatalf("wrong guess %d: %d, want 401", i+1, rec.Code)
		}
	}
	if rec := login("192.0.2.1", "wrong"); rec.Code != 401 {
		t.Fatalf("the guess past the free ones: %d, want 401 (it starts the lockout)", rec.Code)
	}
	rec := login("192.0.2.1", e.token)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("right token while locked out: %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := login("192.0.2.2", e.token); rec.Code != http.StatusSeeOther {
		t.Fatalf("another address: %d, want 303", rec.Code)
	}
	// Each guess after doubles the wait, up to a minute.
	for range 10 {
		now = now.Add(2 * maxLockout)
		login("192.0.2.1", "wrong")
	}
	if got := login("192.0.2.1", e.token).Header().Get("Retry-After"); got != strconv.Itoa(int(maxLockout.Seconds())) {
		t.Fatalf("Retry-After after many guesses: %q, want the cap %v", got, maxLockout)
	}
	now = now.Add(maxLockout)
	if rec := login("192.0.2.1", e.token); rec.Code != http.StatusSeeOther {
		t.Fatalf("right token after the wait: %d, want 303", rec.Code)
	}
	if _, locked := e.srv.guesses.lockedOut(httptest.NewRequest("GET", "/", nil)); locked {
		t.Fatal("a success did not clear the count")
	}
}

// TestWrongBearerTokensAreLockedOut: wrong API tokens and wrong cluster
// tokens count too; the unix socket is never locked out.
func TestWrongBearerTokensAreLockedOut(t *testing.T) {
	e := newAuthEnv(t)
	bearer := func(token string) map[string]string { return map[string]string{"Authorization": "Bearer " + token} }
	for range freeGuesses + 1 {
		e.do(t, plain, "GET", "/api/deployments", "", bearer("wrong-token-guess"))
	}
	resp := e.do(t, plain, "GET", "/api/deployments", "", bearer(e.token))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("right API token after six wrong ones: %d, want 429 with Retry-After", resp.StatusCode)
	}
	if resp := e.do(t, plain, "POST", "/api/cluster", "{}", bearer("guess")); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("join while locked out: %d, want 429", resp.StatusCode)
	}
	if resp := e.do(t, e.sock, "GET", "/api/deployments", "", nil); resp.StatusCode != 200 {
		t.Fatalf("unix socket: %d, want 200", resp.StatusCode)
	}
	if resp := e.do(t, plain, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
		t.Fatalf("/healthz while locked out: %d, want 200", resp.StatusCode)
	}
}
