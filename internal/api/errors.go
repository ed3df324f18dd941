package api

import "errors"

// Categories of errors: the few kinds a caller (the HTTP layer, the CLI)
// branches on. Domain packages keep their own sentinels, made with
// Categorized so that errors.Is also matches their category; the HTTP layer
// maps only these to status codes.
var (
	// ErrNotFound: the named thing does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request does not fit the current state (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is well formed but what it carries is wrong,
	// for example a topology that does not validate (422).
	ErrInvalid = errors.New("invalid")
	// ErrBadRequest: the request itself is malformed (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnavailable: the server cannot do it now, for example while it
	// shuts down (503).
	ErrUnavailable = errors.New("unavailable")
)

// Categorized returns a new sentinel error with its own message that also
// matches category under errors.Is.
func Categorized(category error, msg string) error {
	return &categorized{msg: msg, category: category}
}

type categorized struct {
	msg      string
	category error
}

func (e *categorized) Error() string { return e.msg }
func (e *categorized) Unwrap() error { return e.category }
