package api

import (
	"fmt"
	"strings"
)

// The power states of a guest (POST …/guests/{guest}/power).
const (
	PowerStopped   = "stopped"
	PowerRunning   = "running"
	PowerRestarted = "restarted"
)

// PowerPath is the route that stops, starts or restarts one guest.
const PowerPath = "/api/deployments/{name}/guests/{guest}/power"

// PowerRequest is the body of POST …/guests/{guest}/power.
type PowerRequest struct {
	State string `json:"state"`
}

// PowerOptions are the options of the power action: which guest, and the
// state it is brought to.
type PowerOptions struct {
	Guest string `json:"guest"`
	State string `json:"state"`
}

// Validate checks the power options.
func (o PowerOptions) Validate() error {
	if !ValidName(o.Guest) {
		return fmt.Errorf("power guest %q is not a valid machine name", o.Guest)
	}
	switch o.State {
	case PowerStopped, PowerRunning, PowerRestarted:
		return nil
	}
	return fmt.Errorf("power state %q: want one of %s", o.State, strings.Join([]string{PowerStopped, PowerRunning, PowerRestarted}, ", "))
}

// TimelineOptions are the options of the timeline action.
type TimelineOptions struct {
	// Repeat, when above 0, replaces the file's repeat.
	Repeat int `json:"repeat,omitempty"`
}

// KeepsState reports whether an action of this command leaves the
// deployment's state as it was, whatever its outcome: it works on an up
// deployment's guests (snapshots, power, time lines) without bringing the
// deployment up or down.
func (c CommandName) KeepsState() bool {
	return c == CmdSnapshot || c == CmdPower || c == CmdTimeline
}

// FanoutExecPath is the route that runs one command in many guests.
const FanoutExecPath = "/api/deployments/{name}/exec"

// FanoutExecRequest is the body of POST /api/deployments/{name}/exec.
type FanoutExecRequest struct {
	// Guests names the guests; empty means every guest of the deployment.
	Guests   []string `json:"guests,omitempty"`
	Command  []string `json:"command"`
	TimeoutS int      `json:"timeout_s"`
	// Stdin is every guest's standard input (the same bytes for each), as
	// in ExecRequest.
	Stdin []byte `json:"stdin,omitempty"`
}

// GuestExecResult is the outcome in one guest of a fan-out exec. Error is
// set when the command could not run there (a stopped guest, a kind
// without exec); ExitCode is then -1.
type GuestExecResult struct {
	Guest string `json:"guest"`
	ExecResult
	Error string `json:"error,omitempty"`
}

// FanoutExecResult is the answer of POST /api/deployments/{name}/exec: one
// result per guest, in the order of the request (or of the deployment's
// guests).
type FanoutExecResult struct {
	Results []GuestExecResult `json:"results"`
}

// MaxFanoutConcurrency bounds the guests a fan-out exec runs in at once.
const MaxFanoutConcurrency = 32

// PlanTimeline is the time line as plan shows it.
type PlanTimeline struct {
	Repeat   int               `json:"repeat"`
	PeriodMS int64             `json:"period_ms"`
	Changes  []PlanTimedChange `json:"changes"`
}

// PlanTimedChange is one change of a time line: at AtMS from the start of
// each round, what it does.
type PlanTimedChange struct {
	AtMS      int64  `json:"at_ms"`
	Guest     string `json:"guest"`
	Interface string `json:"interface,omitempty"`
	What      string `json:"what"`
}
