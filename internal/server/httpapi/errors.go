package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/testbedos/testbedos/internal/api"
)

// Error is an error with the HTTP status it answers with. Message goes to the
// client; Err, if any, is the cause kept for errors.Is and the server log.
type Error struct {
	Code    int
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// errorf makes an *Error with a formatted message.
func errorf(code int, err error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: err}
}

// status maps an error to its HTTP status. This is the one place that does.
// It knows only the api categories: domain sentinels (store.ErrNotFound,
// actions.ErrBusy, topology.ErrInvalid, …) are made in one of them.
func status(err error) int {
	var he *Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.Code
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, api.ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, api.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, api.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, api.ErrInvalid):
		return http.StatusUnprocessableEntity
	case errors.Is(err, api.ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeError renders err as the JSON error body.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := status(err)
	msg := err.Error()
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		msg = "request body too large"
	}
	if code >= 500 {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	WriteErrorBody(w, code, msg)
}

// WriteErrorBody answers code with the JSON error body
// {"error": {"code": …, "message": …}}.
func WriteErrorBody(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// maxBody bounds every request body.
const maxBody = 1 << 20

// decodeOptional is decode for a body that may be absent or empty (only
// white space): then v is left as it is.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	return decode(w, r, v)
}

// decode reads a JSON body strictly: size-limited, unknown fields refused,
// exactly one value.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errorf(http.StatusBadRequest, err, "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, nil, "invalid JSON body: more than one value")
	}
	return nil
}
