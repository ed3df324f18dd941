package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// SessionCookie is the GUI's session cookie.
const SessionCookie = "testbedos_session"

// SessionTTL is how long a GUI login lasts.
const SessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept: logging in again and again must not
// grow the server's memory without end.
const maxSessions = 10_000

// sessions are the GUI's logins, in memory: a restart logs everyone out.
// Only hashes of the session ids are kept. Each session has a context that
// ends at logout, expiry or eviction: the streams opened with it end then.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[[32]byte]*session // by sha256(id)
}

type session struct {
	exp    time.Time
	ctx    context.Context
	cancel context.CancelFunc
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, now: time.Now, m: map[[32]byte]*session{}}
}

// create starts a session and returns its id and expiry.
func (s *sessions) create() (string, time.Time, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, err
	}
	id := hex.EncodeToString(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= maxSessions {
		s.expire(now)
	}
	if len(s.m) >= maxSessions { // still full: forget the oldest
		var oldest [32]byte
		var first *session
		for k, se := range s.m {
			if first == nil || se.exp.Before(first.exp) {
				oldest, first = k, se
			}
		}
		s.remove(oldest)
	}
	exp := now.Add(s.ttl)
	// The context's clock is the real one: expiry by s.now (tests move
	// it) is checked by valid.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(s.ttl))
	s.m[sha256.Sum256([]byte(id))] = &session{exp: exp, ctx: ctx, cancel: cancel}
	return id, exp, nil
}

func (s *sessions) expire(now time.Time) {
	for k, se := range s.m {
		if !now.Before(se.exp) {
			s.remove(k)
		}
	}
}

func (s *sessions) remove(k [32]byte) {
	if se, ok := s.m[k]; ok {
		se.cancel()
		delete(s.m, k)
	}
}

// valid reports whether id is a live session.
func (s *sessions) valid(id string) bool {
	_, ok := s.live(id)
	return ok
}

// live is the context of the live session id: it ends when the session
// does.
func (s *sessions) live(id string) (context.Context, bool) {
	if id == "" {
		return nil, false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if !s.now().Before(se.exp) {
		s.remove(k)
		return nil, false
	}
	return se.ctx, true
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(sha256.Sum256([]byte(id)))
}

// sessionOf is the request's session id, if it sent the cookie.
func sessionOf(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// unsafeMethod is a method that may change something.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// sameOrigin reports whether the request's Origin (or, without one, its
// Referer) is this server as the browser reached it: scheme and Host.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// isPage reports whether an unauthenticated request is a browser asking
// for a page (redirected to the login form) rather than an API call (401).
func isPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return !strings.HasPrefix(p, "/api/") && p != "/metrics" && p != "/healthz"
}

// refuseOrigin answers 403 to an unsafe request of a session from another
// origin (cross-site request forgery).
func refuseOrigin(w http.ResponseWriter, r *http.Request) {
	countAs(r, routeUnauthenticated)
	dropBody(w, r)
	httpapi.WriteErrorBody(w, http.StatusForbidden,
		"refused: a request made with the GUI session must come from the server's own pages (Origin or Referer must match "+r.Host+"); scripts use Authorization: Bearer")
}

// safeNext is where to go after logging in: a path on this server only.
// Browsers drop tabs and newlines from a Location and read a backslash as
// a slash ("/\t/evil" is "//evil"): such paths are refused whole.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/login") ||
		strings.ContainsFunc(next, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}
