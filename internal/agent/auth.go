package agent

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// RequireSecret lets through only requests carrying
// "Authorization: Bearer <secret>", compared in constant time; others get
// 401. An empty secret lets nothing through.
func RequireSecret(secret string) func(http.Handler) http.Handler {
	want := []byte(secret)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || len(want) == 0 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="testbedos-agent"`)
				http.Error(w, "member secret required", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
