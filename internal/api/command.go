package api

import (
	"encoding/json"
	"fmt"
	"strings"
)

// CommandName names an orchestration action.
type CommandName string

// The actions a deployment accepts.
const (
	CmdGenerateArtefacts CommandName = "generate-artefacts"
	CmdClearArtefacts    CommandName = "clear-artefacts"
	CmdUp                CommandName = "up"
	CmdDown              CommandName = "down"
	CmdSnapshot          CommandName = "snapshot"
	// CmdApply brings an up deployment to what kvm-compose.yaml says now,
	// doing exactly what GET …/plan shows.
	CmdApply CommandName = "apply"
	// CmdPower stops, starts or restarts one guest of an up deployment.
	CmdPower CommandName = "power"
	// CmdTimeline runs the time line of kvm-compose.yaml on an up
	// deployment.
	CmdTimeline CommandName = "timeline"
)

// Commands lists every action name, in the order the CLI documents them.
var Commands = []CommandName{CmdGenerateArtefacts, CmdClearArtefacts, CmdUp, CmdDown, CmdApply, CmdSnapshot, CmdPower, CmdTimeline}

// wireName is the original server's spelling (snake_case enum variant).
func (c CommandName) wireName() string { return strings.ReplaceAll(string(c), "-", "_") }

func parseCommandName(s string) (CommandName, error) {
	n := CommandName(strings.ReplaceAll(s, "_", "-"))
	for _, c := range Commands {
		if c == n {
			return n, nil
		}
	}
	return "", fmt.Errorf("unknown command %q (want one of generate-artefacts, clear-artefacts, up, down, apply, snapshot, power, timeline)", s)
}

// UpOptions are the options of the up action.
type UpOptions struct {
	// Provision re-creates guests that already exist.
	Provision bool `json:"provision"`
	// RerunScripts runs setup scripts again on guests that already ran them.
	RerunScripts bool `json:"rerun_scripts"`
	// Timeline runs the time line of kvm-compose.yaml once the deployment
	// is up, in the same action.
	Timeline bool `json:"timeline,omitempty"`
}

// SnapshotOptions are the options of the snapshot action.
type SnapshotOptions struct {
	SubCommand string `json:"sub_command"` // create|restore|delete
	Guest      string `json:"guest"`
	Name       string `json:"name,omitempty"`
}

// SnapshotSubCommands lists the snapshot sub-commands.
var SnapshotSubCommands = []string{"create", "restore", "delete"}

// snapshotReads are the sub-commands of older servers that only read:
// reading snapshots is a GET (SnapshotsPath), never an action, so that it
// cannot change a deployment's state.
var snapshotReads = map[string]string{"list": "", "info": "/{snapshot}"}

// SnapshotsPath is the route that lists the snapshots of a guest.
const SnapshotsPath = "/api/deployments/{name}/guests/{guest}/snapshots"

// Command is one action with its options. Its JSON is the original server's
// enum shape: "down", "generate_artefacts", {"up":{"up_cmd":{…}}}, {"snapshot":{"snapshot_cmd":{…}}}.
type Command struct {
	Name     CommandName
	Up       UpOptions
	Snapshot SnapshotOptions
	Power    PowerOptions
	Timeline TimelineOptions
}

func (c Command) String() string { return string(c.Name) }

// MarshalJSON writes the original enum shape.
func (c Command) MarshalJSON() ([]byte, error) {
	switch c.Name {
	case CmdUp:
		return json.Marshal(map[string]any{"up": map[string]any{"up_cmd": c.Up}})
	case CmdSnapshot:
		return json.Marshal(map[string]any{"snapshot": map[string]any{"snapshot_cmd": c.Snapshot}})
	case CmdPower:
		return json.Marshal(map[string]any{"power": map[string]any{"power_cmd": c.Power}})
	case CmdTimeline:
		return json.Marshal(map[string]any{"timeline": map[string]any{"timeline_cmd": c.Timeline}})
	case "":
		return []byte("null"), nil
	default:
		return json.Marshal(c.Name.wireName())
	}
}

// UnmarshalJSON reads the original enum shape and also plain names with
// hyphens ("generate-artefacts").
func (c *Command) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*c = Command{}
		return nil
	}
	str, obj, err := unmarshalStringOrObject(data)
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if obj == nil {
		name, err := parseCommandName(str)
		if err != nil {
			return err
		}
		*c = Command{Name: name}
		return nil
	}
	for key, raw := range obj {
		name, err := parseCommandName(key)
		if err != nil {
			return err
		}
		out := Command{Name: name}
		switch name {
		case CmdUp:
			var v struct {
				UpCmd UpOptions `json:"up_cmd"`
			}
			if err := strictUnmarshal(raw, &v); err != nil {
				return fmt.Errorf("command up: %w", err)
			}
			out.Up = v.UpCmd
		case CmdSnapshot:
			var v struct {
				SnapshotCmd SnapshotOptions `json:"snapshot_cmd"`
			}
			if err := strictUnmarshal(raw, &v); err != nil {
				return fmt.Errorf("command snapshot: %w", err)
			}
			out.Snapshot = v.SnapshotCmd
		case CmdPower:
			var v struct {
				PowerCmd PowerOptions `json:"power_cmd"`
			}
			if err := strictUnmarshal(raw, &v); err != nil {
				return fmt.Errorf("command power: %w", err)
			}
			out.Power = v.PowerCmd
		case CmdTimeline:
			var v struct {
				TimelineCmd TimelineOptions `json:"timeline_cmd"`
			}
			if err := strictUnmarshal(raw, &v); err != nil {
				return fmt.Errorf("command timeline: %w", err)
			}
			out.Timeline = v.TimelineCmd
		default:
			if s := strings.TrimSpace(string(raw)); s != "null" && s != "{}" {
				return fmt.Errorf("command %s takes no options", name)
			}
		}
		*c = out
	}
	return nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// ActionRequest is the body of POST /api/deployments/{name}/action. The
// command is a name with flat options ({"command":"up","provision":true}) or
// the original's enum object ({"command":{"up":{"up_cmd":{…}}}}).
type ActionRequest struct {
	Command      Command          `json:"command"`
	Provision    bool             `json:"provision,omitempty"`
	RerunScripts bool             `json:"rerun_scripts,omitempty"`
	Snapshot     *SnapshotOptions `json:"snapshot,omitempty"`
	// Power are the options of the power action.
	Power *PowerOptions `json:"power,omitempty"`
	// Timeline runs the time line after up (up only).
	Timeline bool `json:"timeline,omitempty"`
	// GenerateArtefacts runs generate-artefacts before the command (original field).
	GenerateArtefacts bool `json:"generate_artefacts,omitempty"`
}

// Resolve merges the flat options into the command and checks them.
func (r ActionRequest) Resolve() (Command, error) {
	c := r.Command
	switch c.Name {
	case "":
		return c, fmt.Errorf("command is required")
	case CmdUp:
		c.Up.Provision = c.Up.Provision || r.Provision
		c.Up.RerunScripts = c.Up.RerunScripts || r.RerunScripts
		c.Up.Timeline = c.Up.Timeline || r.Timeline
	case CmdPower:
		if r.Power != nil {
			c.Power = *r.Power
		}
		if err := c.Power.Validate(); err != nil {
			return c, err
		}
	case CmdSnapshot:
		if r.Snapshot != nil {
			c.Snapshot = *r.Snapshot
		}
		if err := c.Snapshot.Validate(); err != nil {
			return c, err
		}
	}
	if c.Name != CmdUp && (r.Provision || r.RerunScripts) {
		return c, fmt.Errorf("provision and rerun_scripts apply to up only, not %s", c.Name)
	}
	if c.Name != CmdUp && r.Timeline {
		return c, fmt.Errorf("timeline applies to up only, not %s (run the action timeline instead)", c.Name)
	}
	if c.Name != CmdPower && r.Power != nil {
		return c, fmt.Errorf("power options apply to power only, not %s", c.Name)
	}
	if c.Name != CmdSnapshot && r.Snapshot != nil {
		return c, fmt.Errorf("snapshot options apply to snapshot only, not %s", c.Name)
	}
	return c, nil
}

// Validate checks the snapshot options.
func (o SnapshotOptions) Validate() error {
	if suffix, ok := snapshotReads[o.SubCommand]; ok {
		return fmt.Errorf("snapshot %s is not an action: read snapshots with GET %s%s (kvm-compose snapshot %s)", o.SubCommand, SnapshotsPath, suffix, o.SubCommand)
	}
	known := false
	for _, s := range SnapshotSubCommands {
		known = known || s == o.SubCommand
	}
	if !known {
		return fmt.Errorf("snapshot sub_command %q: want one of %s", o.SubCommand, strings.Join(SnapshotSubCommands, ", "))
	}
	if !ValidName(o.Guest) {
		return fmt.Errorf("snapshot guest %q is not a valid machine name", o.Guest)
	}
	if !ValidName(o.Name) {
		return fmt.Errorf("snapshot %s needs a snapshot name matching %s", o.SubCommand, NamePattern)
	}
	return nil
}
