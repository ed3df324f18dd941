package httpapi

import (
	"log/slog"
	"net/http"
)

// Access is the credential that opens a route over TCP. The unix socket is
// the trusted local door and opens every route but the agent API.
type Access int

const (
	// AccessOpen needs no credential: /healthz, the login form, its assets.
	AccessOpen Access = iota
	// AccessUser takes the API token (Authorization: Bearer) or a GUI
	// session cookie; without auth it takes anyone whose Origin is not
	// another site's.
	AccessUser
	// AccessClusterToken takes the cluster token (or a join token made by
	// `testbedos-server join-token`) and nothing else: a host joining.
	AccessClusterToken
	// AccessMemberOrUser takes the secret of the member the path names
	// (over TLS from its pinned certificate), or what AccessUser takes.
	AccessMemberOrUser
	// AccessMember takes only the member secret of this client host, from
	// the main's pinned certificate: the agent API.
	AccessMember
)

var accessNames = [...]string{"none", "token or session", "cluster token", "member secret or token", "member secret"}

func (a Access) String() string {
	if a < 0 || int(a) >= len(accessNames) {
		return "unknown"
	}
	return accessNames[a]
}

// Policy is what the server checks before a route's handler runs.
type Policy struct {
	Access Access
	// Action marks a route that starts work: refused with 503 once the
	// server is shutting down, while everything else goes on.
	Action bool
	// Stream marks a route whose answer lasts as long as the client wants
	// (websockets, captures, exec): no read or write deadline after the
	// request is let in.
	Stream bool
}

// The policies of the REST table.
var (
	open         = Policy{Access: AccessOpen}
	user         = Policy{Access: AccessUser}
	action       = Policy{Access: AccessUser, Action: true}
	join         = Policy{Access: AccessClusterToken}
	memberOrUser = Policy{Access: AccessMemberOrUser}
	stream       = Policy{Access: AccessUser, Stream: true}
)

// Route is one entry of the server's route table: a Go 1.22 mux pattern,
// the policy the server applies before Handler, and Handler.
type Route struct {
	Pattern string
	Policy
	Handler http.Handler
}

// Routes is the REST API with each route's policy; handlers render their
// errors with the JSON error body.
func Routes(d Deps) []Route {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	var out []Route
	for _, rt := range routes(d) {
		fn := rt.handler
		out = append(out, Route{Pattern: rt.pattern, Policy: rt.policy, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				writeError(w, r, d.Logger, err)
			}
		})})
	}
	return out
}
