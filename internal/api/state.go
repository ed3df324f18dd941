package api

import (
	"encoding/json"
	"fmt"
	"strings"
)

// StateKind is the coarse state of a deployment.
type StateKind string

// The deployment states.
const (
	StateDown    StateKind = "down"
	StateUp      StateKind = "up"
	StateRunning StateKind = "running"
	StateFailed  StateKind = "failed"
)

// DeploymentState is a deployment's state. Its JSON is the original's:
// "down", "up", "running" or {"failed": <command>}. The zero value is down.
type DeploymentState struct {
	Kind   StateKind
	Failed *Command // the command that failed, when Kind is StateFailed
}

// Convenience constructors.
var (
	StateIsDown    = DeploymentState{Kind: StateDown}
	StateIsUp      = DeploymentState{Kind: StateUp}
	StateIsRunning = DeploymentState{Kind: StateRunning}
)

// FailedState is the state after cmd failed.
func FailedState(cmd Command) DeploymentState {
	return DeploymentState{Kind: StateFailed, Failed: &cmd}
}

// Is reports whether the state has kind k (the zero value counts as down).
func (s DeploymentState) Is(k StateKind) bool {
	if s.Kind == "" {
		return k == StateDown
	}
	return s.Kind == k
}

func (s DeploymentState) String() string {
	switch {
	case s.Kind == "":
		return string(StateDown)
	case s.Kind == StateFailed && s.Failed != nil:
		return "failed(" + string(s.Failed.Name) + ")"
	default:
		return string(s.Kind)
	}
}

// TextAfter is how state s reads when the action that left it ended with
// errorCode: a failed state a cancelled action left reads "cancelled(up)"
// (the JSON keeps the original's {"failed": …} shape; the cancel is in the
// action's error code). The CLI and the GUI both show it so.
func (s DeploymentState) TextAfter(errorCode int) string {
	text := s.String()
	if errorCode == ErrorCodeCancelled && s.Is(StateFailed) {
		return "cancelled" + strings.TrimPrefix(text, "failed")
	}
	return text
}

// MarshalJSON writes the original shape.
func (s DeploymentState) MarshalJSON() ([]byte, error) {
	switch s.Kind {
	case "":
		return json.Marshal(StateDown)
	case StateFailed:
		var cmd Command
		if s.Failed != nil {
			cmd = *s.Failed
		}
		return json.Marshal(map[string]Command{"failed": cmd})
	default:
		return json.Marshal(string(s.Kind))
	}
}

// UnmarshalJSON reads the original shape.
func (s *DeploymentState) UnmarshalJSON(data []byte) error {
	str, obj, err := unmarshalStringOrObject(data)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if obj == nil {
		switch k := StateKind(str); k {
		case StateDown, StateUp, StateRunning:
			*s = DeploymentState{Kind: k}
			return nil
		}
		return fmt.Errorf("unknown state %q", str)
	}
	raw, ok := obj["failed"]
	if !ok {
		return fmt.Errorf("state object must have the key \"failed\"")
	}
	var cmd Command
	if err := json.Unmarshal(raw, &cmd); err != nil {
		return fmt.Errorf("state failed: %w", err)
	}
	*s = FailedState(cmd)
	return nil
}
