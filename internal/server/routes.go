package server

import (
	"bufio"
	"context"
	"net"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// Route is one entry of the server's route table: its pattern, the
// credential that opens it, whether it starts work, and its handler.
type Route = httpapi.Route

// The server's own routes.
const (
	metricsRoute = "GET /metrics"
	healthRoute  = "GET /healthz"
	loginRoute   = "GET /login"
	loginPost    = "POST /login"
	logoutRoute  = "POST /logout"
	agentRoute   = "/api/agent/"
)

var (
	openRoute   = httpapi.Policy{Access: httpapi.AccessOpen}
	userRoute   = httpapi.Policy{Access: httpapi.AccessUser}
	memberRoute = httpapi.Policy{Access: httpapi.AccessMember}
)

// mainTable is the main's route table: the REST API, metrics, the login
// form and the GUI's pages. The REST handlers are also mounted, without
// policies, on apiMux, which the GUI's own pages call in-process once
// their request was let in.
func (s *Server) mainTable(deps httpapi.Deps) []Route {
	rts := httpapi.Routes(deps)
	s.apiMux = http.NewServeMux()
	for _, rt := range rts {
		s.apiMux.Handle(rt.Pattern, rt.Handler)
	}
	rts = append(rts, Route{Pattern: metricsRoute, Policy: userRoute, Handler: s.metrics.handler()})
	rts = append(rts, s.loginRoutes()...)
	for _, p := range s.gui.Pages() {
		pol := userRoute
		if p.Public {
			pol = openRoute
		}
		rts = append(rts, Route{Pattern: p.Pattern, Policy: pol, Handler: p.Handler})
	}
	return rts
}

// clientTable is a client host's API: its health, its status and metrics
// (this host's API token), and under /api/agent/ the agent API the main
// drives (the member secret, from the main's pinned certificate).
func (s *Server) clientTable() []Route {
	rts := []Route{
		{Pattern: healthRoute, Policy: openRoute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{\"status\": \"ok\"}\n"))
		})},
		{Pattern: "GET /api/config/status", Policy: userRoute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, s.status())
		})},
		{Pattern: "GET /api/agent/health", Policy: memberRoute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, api.AgentHealth{Name: s.host.Name, Status: "ok"})
		})},
		{Pattern: metricsRoute, Policy: userRoute, Handler: s.metrics.handler()},
	}
	if s.agent != nil {
		rts = append(rts, Route{Pattern: agentRoute, Policy: memberRoute, Handler: s.agent})
	}
	return rts
}

// serveTable mounts every route behind its policy on one mux: the mux's
// lookup is the only one a request makes, and the matched entry's guard
// checks the credential, the shutdown and labels the request.
func (s *Server) serveTable(rts []Route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range rts {
		mux.Handle(rt.Pattern, s.guard(rt))
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = deadlines(w, r, s.bodyTimeout, writeTimeout)
		mux.ServeHTTP(&unmatched{ResponseWriter: w, r: r, s: s}, r)
	})
	h = s.checkHost(h)
	return logRequests(s.log, s.metrics)(h)
}

// guard applies rt's policy, then runs its handler.
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := matchOf(r); m != nil {
			m.route = &rt
		}
		r, ok := s.admit(rt.Access, w, r)
		if !ok {
			return
		}
		if rt.Stream {
			endDeadlines(w)
		}
		if rt.Action && s.stopping.Load() {
			w.Header().Set("Retry-After", "30")
			httpapi.WriteErrorBody(w, http.StatusServiceUnavailable,
				"the server is shutting down and starts no new action; send it again once the server is back")
			return
		}
		rt.Handler.ServeHTTP(w, r)
	})
}

// match is what the request matched: the route (set by its guard; nil
// when the mux answered itself: 404, 405, a redirect) and, when a door
// refused it, the label it is counted under instead.
type match struct {
	route *Route
	label string
}

type matchKey struct{}

func withMatch(r *http.Request) (*http.Request, *match) {
	m := &match{}
	return r.WithContext(context.WithValue(r.Context(), matchKey{}, m)), m
}

func matchOf(r *http.Request) *match {
	m, _ := r.Context().Value(matchKey{}).(*match)
	return m
}

// countAs makes logRequests count r under route instead of its pattern.
func countAs(r *http.Request, route string) {
	if m := matchOf(r); m != nil {
		m.label = route
	}
}

// unmatched turns the mux's own answers for requests no route matched
// (404, 405) into the JSON error body, after the door of the API token:
// a caller without credentials learns nothing about routes.
type unmatched struct {
	http.ResponseWriter
	r       *http.Request
	s       *Server
	swallow bool
}

func (u *unmatched) WriteHeader(code int) {
	if u.swallow {
		return
	}
	if m := matchOf(u.r); (m != nil && m.route != nil) || (code != http.StatusNotFound && code != http.StatusMethodNotAllowed) {
		u.ResponseWriter.WriteHeader(code)
		return
	}
	u.swallow = true
	h := u.Header()
	allow := h.Get("Allow")
	h.Del("Content-Type")
	h.Del("X-Content-Type-Options")
	if _, ok := u.s.admit(httpapi.AccessUser, u.ResponseWriter, u.r); !ok {
		return
	}
	msg := "no route " + u.r.Method + " " + u.r.URL.Path
	if code == http.StatusMethodNotAllowed {
		msg = "method " + u.r.Method + " not allowed on " + u.r.URL.Path + " (allowed: " + allow + ")"
	}
	httpapi.WriteErrorBody(u.ResponseWriter, code, msg)
}

func (u *unmatched) Write(b []byte) (int, error) {
	if u.swallow {
		return len(b), nil
	}
	return u.ResponseWriter.Write(b)
}

func (u *unmatched) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// Hijack and Flush pass through to the connection (websockets, captures).
func (u *unmatched) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(u.ResponseWriter).Hijack()
}

func (u *unmatched) Flush() {
	http.NewResponseController(u.ResponseWriter).Flush()
}
