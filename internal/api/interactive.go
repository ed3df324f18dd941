package api

// Impairment is the run-time setting of one guest interface (GET/PUT
// /api/deployments/{name}/guests/{guest}/interfaces/{iface}): whether the
// link is up, and the netem impairment of the packets the host sends the
// guest on it. A PUT replaces all of it: a field left out is zero, "up"
// left out is true.
type Impairment struct {
	Up         bool    `json:"up"`
	DelayMS    int     `json:"delay_ms"`
	JitterMS   int     `json:"jitter_ms"`
	LossPct    float64 `json:"loss_pct"`
	RateKbit   int     `json:"rate_kbit"`
	CorruptPct float64 `json:"corrupt_pct"`
}

// InterfaceImpairment is the answer of the interface routes: the setting in
// force, where it comes from, and the link it is set on.
type InterfaceImpairment struct {
	Guest     string `json:"guest"`
	Interface string `json:"interface"`
	// HostLink is the host-side end of the link (veth peer or tap) that
	// carries the qdisc.
	HostLink string `json:"host_link"`
	Impairment
	// Source is "yaml" while kvm-compose.yaml's netem (or none) is in
	// force, "runtime" once a PUT replaced it.
	Source string `json:"source"`
}

// ExecRequest is the body of POST …/guests/{guest}/exec.
type ExecRequest struct {
	Command []string `json:"command"`
	// TimeoutS bounds the run in seconds; 0 means DefaultExecTimeoutS, at
	// most MaxExecTimeoutS.
	TimeoutS int `json:"timeout_s"`
	// Stdin is the command's standard input, base64 in JSON, at most
	// ExecStdinCap bytes; without it the command reads end of input.
	Stdin []byte `json:"stdin,omitempty"`
}

// ExecResult is the answer of POST …/exec. A command killed by its timeout
// has ExitCode -1 and TimedOut true.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Truncated: stdout or stderr went over ExecOutputCap and was cut.
	Truncated bool `json:"truncated,omitempty"`
}

// Limits of exec.
const (
	DefaultExecTimeoutS = 30
	MaxExecTimeoutS     = 3600
	// ExecOutputCap bounds stdout and stderr each: 1 MiB.
	ExecOutputCap = 1 << 20
	// ExecStdinCap bounds the standard input of one exec: 512 KiB (base64
	// makes it two thirds of the 1 MiB request body).
	ExecStdinCap = 512 << 10
)

// ErrGuestNotAnswering: exec could not reach the guest (a VM whose SSH
// server never answered) before its timeout, so nothing ran (503).
var ErrGuestNotAnswering = Categorized(ErrUnavailable, "the guest did not answer, so nothing ran")
