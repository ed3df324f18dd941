package testbedos

import (
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// The wire types of the API, as the server sends and takes them.
type (
	Deployment          = api.Deployment
	DeploymentState     = api.DeploymentState
	ActionRequest       = api.ActionRequest
	Command             = api.Command
	CommandName         = api.CommandName
	UpOptions           = api.UpOptions
	SnapshotOptions     = api.SnapshotOptions
	Outcome             = api.Outcome
	LogEntry            = api.LogEntry
	LogIndex            = api.LogIndex
	ActionPage          = api.ActionPage
	ProjectFile         = api.ProjectFile
	Image               = api.Image
	FanoutExecRequest   = api.FanoutExecRequest
	FanoutExecResult    = api.FanoutExecResult
	ProjectFiles        = api.ProjectFiles
	ActionSummary       = api.ActionSummary
	ServerStatus        = api.ServerStatus
	Event               = api.Event
	Guest               = api.Guest
	GuestInterface      = api.GuestInterface
	GuestResources      = api.GuestResources
	HostSeries          = api.HostSeries
	GuestSeries         = api.GuestSeries
	Snapshot            = api.Snapshot
	ExecRequest         = api.ExecRequest
	ExecResult          = api.ExecResult
	Impairment          = api.Impairment
	InterfaceImpairment = api.InterfaceImpairment
	Plan                = api.Plan
	PlanChange          = api.PlanChange
	HostConfig          = api.HostConfig
	ClusterConfig       = api.ClusterConfig
	ClusterHost         = api.ClusterHost
	JoinRequest         = api.JoinRequest
	JoinAnswer          = api.JoinAnswer
	Member              = api.Member
	ImportResult        = api.ImportResult
	ImageDigest         = api.ImageDigest
	BundleManifest      = api.BundleManifest
	// Console is an open terminal of a guest: Read what it shows, Write
	// keys, Resize, Close.
	Console = client.Console
	// Error is an error answer of the server: its HTTP status and message.
	Error = client.Error
	// Option changes a Client (WithToken, WithFingerprint, WithHTTPClient).
	Option = client.Option
)

// Commands of Action and Run.
const (
	CmdGenerateArtefacts = api.CmdGenerateArtefacts
	CmdClearArtefacts    = api.CmdClearArtefacts
	CmdUp                = api.CmdUp
	CmdDown              = api.CmdDown
	CmdApply             = api.CmdApply
	CmdSnapshot          = api.CmdSnapshot
)

// Problem is one problem of a kvm-compose.yaml (ValidateYAML).
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// JoinToken is a limited join token (IssueJoinToken): Secret is what a
// join carries in place of the cluster token.
type JoinToken struct {
	ID        string    `json:"id"`
	Secret    string    `json:"secret"`
	Uses      int       `json:"uses"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Graph is a deployment's topology (Graph with format "json").
type Graph struct {
	Deployment string `json:"deployment"`
	Nodes      []struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"` // guest, switch, router
		Name      string `json:"name"`
		Label     string `json:"label"`
		Host      string `json:"host,omitempty"`
		GuestKind string `json:"guest_kind,omitempty"`
		Subnet    string `json:"subnet,omitempty"`
		External  bool   `json:"external,omitempty"`
	} `json:"nodes"`
	Edges []struct {
		From      string `json:"from"`
		To        string `json:"to"`
		Interface string `json:"interface"`
		Address   string `json:"address,omitempty"`
	} `json:"edges"`
}
