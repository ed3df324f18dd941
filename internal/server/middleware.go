package server

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Hijack lets websockets through and records the switch of protocols.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	r.status = http.StatusSwitchingProtocols
	return hj.Hijack()
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Route labels for requests that have no registered pattern.
const (
	routeUnmatched       = "unmatched"
	routeUnauthenticated = "unauthenticated"
)

// methodLabel bounds the method label: anyone can send any method.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodHead, http.MethodOptions:
		return method
	}
	return "other"
}

// logRequests writes one line per request and counts it; a panicking
// handler answers 500 instead of killing the connection silently. Every
// label is bounded: the method to a fixed set, the route to the pattern of
// the route table's entry the request matched or one of the constants
// above, so no request makes a new series.
func logRequests(log *slog.Logger, m *metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &recorder{ResponseWriter: w}
			r, match := withMatch(r)
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
					if rec.status == 0 {
						httpapi.WriteErrorBody(rec, http.StatusInternalServerError, "internal error: the handler crashed; see the server log")
					}
				}
				took := time.Since(start)
				status := rec.status
				if status == 0 {
					status = http.StatusOK
				}
				route := match.label
				if route == "" {
					route = routeUnmatched
					if match.route != nil {
						route = match.route.Pattern
					}
				}
				m.requests.WithLabelValues(methodLabel(r.Method), route, strconv.Itoa(status)).Inc()
				m.latency.WithLabelValues(route).Observe(took.Seconds())
				log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
					"duration_ms", float64(took.Microseconds())/1000, "remote", remote(r))
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// remote names the peer; requests over the unix socket have no address.
func remote(r *http.Request) string {
	if r.RemoteAddr == "" || r.RemoteAddr == "@" {
		return "unix"
	}
	return r.RemoteAddr
}
