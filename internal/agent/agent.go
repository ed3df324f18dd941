// Package agent is the agent API of a client host: the operations the main
// drives on it (its bridges and firewall, its guests through its own
// drivers, the deployment files the main pushes to it, and its own record of
// what it made), served under /api/agent/, and RemoteHost, the engine.Host
// on the main that proxies to it.
package agent

import (
	"errors"

	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/net/impair"
	"github.com/testbedos/testbedos/internal/topology"
)

// ErrUnreachable: the client host did not answer (connection refused, reset,
// timed out, or a stream broken before its last line). It is an
// engine.ErrHostUnreachable.
var ErrUnreachable error = unreachable{}

type unreachable struct{}

func (unreachable) Error() string        { return "client host unreachable" }
func (unreachable) Is(target error) bool { return target == engine.ErrHostUnreachable }

// ErrUnauthorized: the client host refused the member secret (401); the
// membership has to be renewed.
var ErrUnauthorized = errors.New("member secret refused")

// Prefix is where the agent API is mounted.
const Prefix = "/api/agent/"

// Health is the answer of GET /api/agent/health.
type Health struct {
	Name string `json:"name"`
	Time string `json:"time"` // RFC 3339 with nanoseconds, the client's clock
}

// Capabilities is the answer of GET /api/agent/capabilities: the guest kinds
// the client has drivers for and what each can do.
type Capabilities struct {
	Kinds map[string]guest.Capabilities `json:"kinds"`
}

// GuestRequest is the body of every /api/agent/guests/… call.
type GuestRequest struct {
	Deployment string         `json:"deployment"`
	Guest      topology.Guest `json:"guest"`
	// Files maps each deployment file the call needs (as the state names
	// it) to the sha256 of its content, already pushed to the client.
	Files map[string]string `json:"files,omitempty"`
	// Script is the file RunScript runs (a key of Files).
	Script string `json:"script,omitempty"`
	// Volumes are the manifests of a docker guest's volume sources, by
	// source, their files already pushed (create).
	Volumes map[string][]VolumeEntry `json:"volumes,omitempty"`
	// Argv and Stdin are the command an exec runs in the guest.
	Argv  []string `json:"argv,omitempty"`
	Stdin []byte   `json:"stdin,omitempty"`
}

// StreamLine is one line of the NDJSON answer of a guest call: log lines
// first, then one last line with OK or Error.
type StreamLine struct {
	Line    *string `json:"line,omitempty"`
	OK      bool    `json:"ok,omitempty"`
	Error   string  `json:"error,omitempty"`
	Code    string  `json:"code,omitempty"`
	Created bool    `json:"created,omitempty"`
	Exists  bool    `json:"exists,omitempty"`
	// Found answers the find operation: what the client's driver found of
	// the guest, and whose.
	Found *guest.Found `json:"found,omitempty"`
	// Stdout and Stderr are output of an exec's command, in order; Exit
	// (on the last line) is its exit status.
	Stdout []byte `json:"stdout,omitempty"`
	Stderr []byte `json:"stderr,omitempty"`
	Exit   int    `json:"exit,omitempty"`
}

// errorCodes carries the sentinels callers branch on across the wire.
var errorCodes = map[string]error{
	"outside_project": guest.ErrOutsideProject,
	"unsupported":     guest.ErrUnsupported,
	"no_snapshot":     guest.ErrNoSnapshot,
	"no_netem":        impair.ErrNoNetem,
	"no_link_ops":     engine.ErrNoLinkOps,
}

func codeOf(err error) string {
	for code, sentinel := range errorCodes {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return ""
}

// remoteError is an error the client host reported.
type remoteError struct {
	host, msg string
	sentinel  error
}

func (e *remoteError) Error() string { return "host " + e.host + ": " + e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func newRemoteError(host, msg, code string) error {
	return &remoteError{host: host, msg: msg, sentinel: errorCodes[code]}
}
