package httpapi

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// credentialKey holds, in a request's context, the context of the
// credential that let the request in when that credential can end before
// the connection does (a GUI session: logout, expiry).
type credentialKey struct{}

// WithCredential ties the streams of a request with context ctx to cred:
// a websocket opened with it is closed (1008, policy violation) soon after
// cred ends.
func WithCredential(ctx, cred context.Context) context.Context {
	return context.WithValue(ctx, credentialKey{}, cred)
}

func credentialOf(r *http.Request) context.Context {
	if c, ok := r.Context().Value(credentialKey{}).(context.Context); ok {
		return c
	}
	return context.Background()
}

// untilCredentialEnds is ctx, also cancelled when the credential of r
// ends.
func untilCredentialEnds(ctx context.Context, r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(credentialOf(r), cancel)
	return ctx, func() { stop(); cancel() }
}

// credentialEnded reports whether the credential of r has ended.
func credentialEnded(r *http.Request) bool { return credentialOf(r).Err() != nil }

// StatusCredentialEnded closes a stream whose session ended.
const StatusCredentialEnded = websocket.StatusPolicyViolation

// closeCredentialEnded closes a stream whose session ended.
func closeCredentialEnded(conn *wsStream) {
	conn.closeWithin(StatusCredentialEnded, "the session ended (logged out or expired): log in again", closeGrace)
}
