package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/server/httpapi"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// loadToken reads config/token, creating it (0600, 32 random bytes as hex)
// at first start.
func loadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(data))
		if len(tok) < 16 {
			return "", fmt.Errorf("token file %s holds a token shorter than 16 characters", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return tok, nil
}

type trustedKey struct{}

// markConn tells handlers whether a request came through the unix socket,
// the trusted local door.
func markConn(ctx context.Context, c net.Conn) context.Context {
	unix := c.LocalAddr().Network() == "unix"
	return context.WithValue(ctx, trustedKey{}, unix)
}

func trusted(r *http.Request) bool {
	v, _ := r.Context().Value(trustedKey{}).(bool)
	return v
}

// bearerOf is the request's bearer token, trimmed.
func bearerOf(r *http.Request) (string, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(got), ok
}

// equalToken compares tokens in constant time (as hashes, so their lengths
// leak nothing either).
func equalToken(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// noCertificate is the peer of a TLS request without a client
// certificate: it matches no pinned fingerprint.
const noCertificate = "none"

// peerPin is what member checks compare with a pinned fingerprint: "" off
// TLS (loopback, the socket: nothing to compare), the client certificate's
// fingerprint over TLS, or noCertificate when the TLS client sent none.
func peerPin(r *http.Request) string {
	if r.TLS == nil {
		return ""
	}
	if fp := tlsid.PeerFingerprint(r.TLS); fp != "" {
		return fp
	}
	return noCertificate
}

// unauthorized answers 401 with the bearer challenge.
func unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	dropBody(w, r)
	w.Header().Set("WWW-Authenticate", `Bearer realm="testbedos"`)
	httpapi.WriteErrorBody(w, http.StatusUnauthorized, msg)
}

// admit checks the credential a route's policy asks for. It answers the
// refusal itself (401, 403 or a redirect to the login form) and then
// reports false. The unix socket opens everything but the agent API.
func (s *Server) admit(a httpapi.Access, w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	switch a {
	case httpapi.AccessOpen:
		return r, true
	case httpapi.AccessMember:
		if s.guesses.refuseLockedOut(w, r) {
			return r, false
		}
		if tok, ok := bearerOf(r); ok && s.follower != nil && s.follower.Authenticate(tok, peerPin(r)) {
			s.guesses.succeeded(r)
			return r, true
		}
		s.guesses.failed(r)
		countAs(r, routeUnauthenticated)
		unauthorized(w, r, "the agent API takes the member secret of this host, from the main")
		return r, false
	}
	if trusted(r) {
		return r, true
	}
	bearer, hasBearer := bearerOf(r)
	switch a {
	case httpapi.AccessClusterToken:
		return s.admitJoin(w, r)
	case httpapi.AccessMemberOrUser:
		if hasBearer && s.members != nil && s.members.Authenticate(r.PathValue("name"), bearer, peerPin(r)) {
			return r, true
		}
	}
	return s.admitUser(w, r)
}

// admitUser lets in requests bearing the API token and requests with a
// live GUI session (unsafe ones only from the server's own pages: 403
// otherwise). Other pages redirect to the login form; the rest get 401.
// Without auth, an unsafe request whose Origin is another site's (a
// browser on a foreign page) is refused; clients that send no Origin go
// through.
func (s *Server) admitUser(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if s.token == "" {
		if unsafeMethod(r.Method) && r.Header.Get("Origin") != "" && !sameOrigin(r) {
			refuseOrigin(w, r)
			return r, false
		}
		return r, true
	}
	got, ok := bearerOf(r)
	if ok && s.guesses.refuseLockedOut(w, r) {
		return r, false
	}
	if ok && equalToken(got, s.token) {
		s.guesses.succeeded(r)
		return r, true
	}
	if ok {
		s.guesses.failed(r)
	}
	if !ok && s.sessions != nil {
		if sess, live := s.sessions.live(sessionOf(r)); live {
			if unsafeMethod(r.Method) && !sameOrigin(r) {
				refuseOrigin(w, r)
				return r, false
			}
			return r.WithContext(httpapi.WithCredential(r.Context(), sess)), true
		}
	}
	countAs(r, routeUnauthenticated)
	if !ok && s.sessions != nil && isPage(r) {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return r, false
	}
	msg := "missing token: send Authorization: Bearer <token from config/token>, or log in at /login"
	switch {
	case s.cfg.Mode == config.ModeClient:
		msg = "this is a client host: send this host's API token (its config/token); the main drives it through /api/agent/"
	case ok:
		msg = "wrong token"
	}
	unauthorized(w, r, msg)
	return r, false
}

// dropBody closes the connection after a refusal of a request with a body:
// the server would otherwise read the body (up to 256 KiB, as slowly as the
// client sends it) before it answers, to keep the connection alive.
func dropBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}
