// Package api holds the wire types shared by the server, the Go client and the GUI.
// It imports only the standard library so every layer can depend on it.
package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// NamePattern is the rule for deployment and machine names. Names become file
// names and parts of kernel object names, so they are checked before use.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidName reports whether s may be used as a deployment or machine name.
func ValidName(s string) bool { return NamePattern.MatchString(s) }

// Deployment is one testbed known to the server.
type Deployment struct {
	Name            string          `json:"name"`
	ProjectLocation string          `json:"project_location"`
	State           DeploymentState `json:"state"`
	LastActionUUID  *string         `json:"last_action_uuid"`
}

// NewDeployment is the body of POST /api/deployments.
type NewDeployment struct {
	Name            string `json:"name"`
	ProjectLocation string `json:"project_location"`
}

// UpdateDeployment is the body of PUT /api/deployments/{name}.
type UpdateDeployment struct {
	ProjectLocation string `json:"project_location"`
}

// DeploymentList is the body of GET /api/deployments; the map shape is the
// original server's, keyed by deployment name.
type DeploymentList struct {
	Deployments map[string]Deployment `json:"deployments"`
}

// ActionAccepted is the 202 answer to an action request.
type ActionAccepted struct {
	UUID string `json:"uuid"`
}

// LogEntry is one record of a deployment's logs index.
type LogEntry struct {
	LogPath string `json:"log_path"`
	// ErrorCode is null while the action runs, 0 on success, non-zero on failure.
	ErrorCode *int `json:"error_code"`
	// EndState is the deployment state the action left behind; null while running.
	EndState *DeploymentState `json:"end_state"`
	// ExecutionTime is when the action started (the original's meaning).
	ExecutionTime time.Time `json:"execution_time"`
	Deployment    string    `json:"deployment"`
	Command       Command   `json:"command"`
	// DurationMS is how long the action took; null while it runs.
	DurationMS *int64 `json:"duration_ms"`
	// Error explains a non-zero error code in words.
	Error string `json:"error,omitempty"`
}

// Finished reports whether the action behind the entry has ended.
func (e LogEntry) Finished() bool { return e.ErrorCode != nil }

// Error codes recorded in the logs index.
const (
	ErrorCodeOK          = 0
	ErrorCodeFailed      = 1
	ErrorCodeCancelled   = 2
	ErrorCodeInterrupted = 3
)

// LogIndex is the body of GET /api/deployments/{name}/logs: uuid -> entry.
type LogIndex map[string]LogEntry

// Outcome is what the log stream's close frame carries (as JSON in the reason).
type Outcome struct {
	ErrorCode int             `json:"error_code"`
	EndState  DeploymentState `json:"end_state"`
}

// ErrorBody is the shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner part of ErrorBody.
type ErrorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ServerStatus is the body of GET /api/config/status.
type ServerStatus struct {
	Mode          string    `json:"mode"`
	Version       string    `json:"version"`
	Hostname      string    `json:"hostname"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Store         string    `json:"store"`
	// TLS tells whether the TCP listener speaks TLS; Fingerprint is this
	// host's certificate's, what clients pin.
	TLS         bool   `json:"tls"`
	Fingerprint string `json:"fingerprint"`
}

// marshalString is a helper for the string-or-object JSON unions below.
func unmarshalStringOrObject(data []byte) (str string, obj map[string]json.RawMessage, err error) {
	if len(data) > 0 && data[0] == '"' {
		err = json.Unmarshal(data, &str)
		return str, nil, err
	}
	if err = json.Unmarshal(data, &obj); err != nil {
		return "", nil, err
	}
	if len(obj) != 1 {
		return "", nil, fmt.Errorf("want an object with exactly one key, got %d", len(obj))
	}
	return "", obj, nil
}
