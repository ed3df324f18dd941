package api

import "time"

// ActionSummary is one past or running action of a deployment, as GET
// /api/deployments/{name}/actions lists it.
type ActionSummary struct {
	UUID    string    `json:"uuid"`
	Command Command   `json:"command"`
	Started time.Time `json:"started"`
	// DurationMS, ErrorCode and EndState are null while the action runs.
	DurationMS *int64           `json:"duration_ms"`
	ErrorCode  *int             `json:"error_code"`
	EndState   *DeploymentState `json:"end_state"`
	// Outcome is the error code in a word: running, succeeded, failed,
	// cancelled or interrupted.
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// ActionPage is the answer of GET /api/deployments/{name}/actions: a page
// of actions, newest first.
type ActionPage struct {
	Actions []ActionSummary `json:"actions"`
	// Total counts every action the logs index holds for the deployment.
	Total int `json:"total"`
	// Next is the offset of the next page; null on the last one.
	Next *int `json:"next"`
}

// Paging of the actions route.
const (
	DefaultActionsLimit = 20
	MaxActionsLimit     = 500
)

// OutcomeOf says in a word how an action with error code code ended.
func OutcomeOf(code *int) string {
	if code == nil {
		return "running"
	}
	switch *code {
	case ErrorCodeOK:
		return "succeeded"
	case ErrorCodeCancelled:
		return "cancelled"
	case ErrorCodeInterrupted:
		return "interrupted"
	}
	return "failed"
}

// Summary is the entry's line in the list of actions.
func (e LogEntry) Summary(uuid string) ActionSummary {
	return ActionSummary{UUID: uuid, Command: e.Command, Started: e.ExecutionTime, DurationMS: e.DurationMS,
		ErrorCode: e.ErrorCode, EndState: e.EndState, Outcome: OutcomeOf(e.ErrorCode), Error: e.Error}
}
