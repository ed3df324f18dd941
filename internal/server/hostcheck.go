package server

import (
	"net"
	"net/http"
	"strings"

	"github.com/testbedos/testbedos/internal/server/httpapi"
)

// hostNames are the names requests over TCP may carry in their Host
// header: localhost, this machine's name (and its first label), the host
// name of host.json, the listen address's host when it is a name, and the
// configured extra names. Any IP address is accepted too: a page can make
// a browser send a foreign Host only through a DNS name it controls (DNS
// rebinding), never through an address literal.
func (s *Server) hostNames() map[string]bool {
	names := map[string]bool{"localhost": true}
	add := func(n string) {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n != "" {
			names[n] = true
		}
	}
	add(s.hostName)
	if short, _, ok := strings.Cut(s.hostName, "."); ok {
		add(short)
	}
	add(s.host.Name)
	if h, _, err := net.SplitHostPort(s.cfg.Listen); err == nil {
		add(h)
	}
	for _, n := range s.cfg.AllowedHosts {
		add(n)
	}
	return names
}

// checkHost refuses, with 421, a request over TCP whose Host header is not
// a name this server answers to: a page on a foreign site that rebinds its
// own name to this host's address reaches the API with its own name as
// Host (and Origin), so the Origin checks alone would let it in. The unix
// socket has no Host to check. With auth on, a request with a bearer token
// is not checked either: a page cannot know the token, and a wrong one is
// refused anyway (the CLI and cluster hosts may use any DNS name).
func (s *Server) checkHost(next http.Handler) http.Handler {
	names := s.hostNames()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, bearer := bearerOf(r)
		if trusted(r) || (s.token != "" && bearer) || allowedHost(r.Host, names) {
			next.ServeHTTP(w, r)
			return
		}
		countAs(r, routeUnauthenticated)
		dropBody(w, r)
		httpapi.WriteErrorBody(w, http.StatusMisdirectedRequest,
			"Host "+strings.ToValidUTF8(r.Host, "\uFFFD")+" is not a name this server answers to (a defence against DNS rebinding): "+
				"reach it by IP address, localhost or its host name, or add the name to TESTBEDOS_ALLOWED_HOSTS (--allowed-hosts, comma separated)")
	})
}

// allowedHost reports whether the Host header host (with or without a
// port) is an IP address or one of names.
func allowedHost(host string, names map[string]bool) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" || net.ParseIP(host) != nil {
		return true
	}
	return names[host]
}
