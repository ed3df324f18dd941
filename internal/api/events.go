package api

import "time"

// EventType says what an Event of /api/events reports.
type EventType string

// The event types published on GET /api/events.
const (
	// EventDeploymentState: a deployment's state changed; State is the new one.
	EventDeploymentState EventType = "deployment-state"
	// EventActionStarted: an action was accepted and runs.
	EventActionStarted EventType = "action-started"
	// EventActionEnded: an action ended; ErrorCode and State are its outcome.
	EventActionEnded  EventType = "action-ended"
	EventMemberJoined EventType = "member-joined"
	EventMemberLost   EventType = "member-lost"
	EventMemberLeft   EventType = "member-left"
)

// Event is one message of the /api/events websocket. Which fields are set
// depends on the type.
type Event struct {
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	// Deployment names the deployment of deployment and action events.
	Deployment string `json:"deployment,omitempty"`
	// UUID is the action of action events, and of a state change an action made.
	UUID    string   `json:"uuid,omitempty"`
	Command *Command `json:"command,omitempty"`
	// State is the deployment's new state, or an action's end state.
	State *DeploymentState `json:"state,omitempty"`
	// ErrorCode and Error are an ended action's outcome.
	ErrorCode *int   `json:"error_code,omitempty"`
	Error     string `json:"error,omitempty"`
	// Member names the cluster member of member events.
	Member string `json:"member,omitempty"`
}

// CancelRequest is the optional body of POST /api/deployments/{name}/cancel:
// with a uuid, only that action is cancelled.
type CancelRequest struct {
	UUID string `json:"uuid,omitempty"`
}

// CloseActionGone is the websocket close code that ends a log stream
// (GET /api/logs/{uuid}/stream) whose action was deleted, with its
// deployment, while it was followed.
const CloseActionGone = 4404
