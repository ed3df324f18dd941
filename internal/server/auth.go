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
	"github.com/testbedos/testbedos/internal/gui"
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
	_, unix := c.(*net.UnixConn)
	return context.WithValue(ctx, trustedKey{}, unix)
}

func trusted(r *http.Request) bool {
	v, _ := r.Context().Value(trustedKey{}).(bool)
	return v
}

// authorizedKey marks a request an earlier door let in with a credential
// of its own (the cluster token on the join route, a member secret).
type authorizedKey struct{}

func authorize(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), authorizedKey{}, true))
}

func authorized(r *http.Request) bool {
	v, _ := r.Context().Value(authorizedKey{}).(bool)
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
func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="testbedos"`)
	httpapi.WriteErrorBody(w, http.StatusUnauthorized, msg)
}

// requireToken lets through requests from the unix socket, /healthz, the
// login form and its assets, requests an earlier door authorized, requests
// bearing the token, and requests with a live GUI session (unsafe ones only
// from the server's own pages: 403 otherwise). Other pages redirect to the
// login form; the rest get 401.
func requireToken(token string, sess *sessions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if trusted(r) || authorized(r) || r.URL.Path == "/healthz" || r.URL.Path == "/login" || gui.IsPublic(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			got, ok := bearerOf(r)
			if ok && equalToken(got, token) {
				next.ServeHTTP(w, r)
				return
			}
			if !ok && sess != nil && sess.valid(sessionOf(r)) {
				if unsafeMethod(r.Method) && !sameOrigin(r) {
					refuseOrigin(w, r)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			countAs(r, routeUnauthenticated)
			if !ok && isPage(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			msg := "missing token: send Authorization: Bearer <token from config/token>, or log in at /login"
			if ok {
				msg = "wrong token"
			}
			unauthorized(w, msg)
		})
	}
}
