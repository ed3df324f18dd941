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
	"os"
	"strings"

	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/server/httpapi"
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

// requireToken lets through requests from the unix socket, /healthz, and
// requests bearing the token; the rest get 401. Tokens are compared in
// constant time (as hashes, so their lengths leak nothing either).
func requireToken(token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if trusted(r) || r.URL.Path == "/healthz" {
				next.ServeHTTP(w, r)
				return
			}
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if ok && subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
				next.ServeHTTP(w, r)
				return
			}
			countAs(r, routeUnauthenticated)
			msg := "missing token: send Authorization: Bearer <token from config/token>"
			if ok {
				msg = "wrong token"
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="testbedos"`)
			httpapi.WriteErrorBody(w, http.StatusUnauthorized, msg)
		})
	}
}
