package api

// PlanPath is the route that shows what apply would change.
const PlanPath = "/api/deployments/{name}/plan"

// ChangeKind names the kind of object a plan change is about.
type ChangeKind string

// The kinds of objects a plan names.
const (
	KindGuest  ChangeKind = "guest"
	KindSwitch ChangeKind = "switch"
	KindTunnel ChangeKind = "tunnel"
	// KindRouter is a router (its DHCP servers follow it).
	KindRouter ChangeKind = "router"
	// KindExternal is the host's side of an external switch, named by the
	// switch.
	KindExternal ChangeKind = "external"
	// KindACL is a deployment's ACL table on a host, named by the table.
	KindACL ChangeKind = "acl"
	// KindNames is the deployment's names in the main host's hosts file
	// (the management network).
	KindNames ChangeKind = "names"
)

// ChangeOp is what apply does with an object.
type ChangeOp string

// The operations of a plan.
const (
	// OpAdd makes an object the record does not hold.
	OpAdd ChangeOp = "add"
	// OpRemove removes an object the YAML no longer has.
	OpRemove ChangeOp = "remove"
	// OpRemake removes and makes again an object whose description changed.
	OpRemake ChangeOp = "remake"
	// OpImpair changes a link's impairments in place: the guest stays.
	OpImpair ChangeOp = "impair"
	// OpRepair makes again or mends an object the record holds and the
	// YAML keeps but that is missing or broken on its host (a bridge
	// deleted by hand, a guest's interface no longer on its switch).
	OpRepair ChangeOp = "repair"
	// OpUpdate rewrites an object in place, in one step that leaves no gap
	// (an ACL table replaced in one nftables transaction).
	OpUpdate ChangeOp = "update"
)

// PlanChange is one change apply would make.
type PlanChange struct {
	Kind ChangeKind `json:"kind"`
	Name string     `json:"name"`
	Host string     `json:"host,omitempty"`
	Op   ChangeOp   `json:"op"`
	// Why says what differs, e.g. "interfaces[0].address 10.0.0.3/24 →
	// 10.0.0.9/24"; empty for add and remove.
	Why string `json:"why,omitempty"`
}

// PlanObject names an object that stays as it is.
type PlanObject struct {
	Kind ChangeKind `json:"kind"`
	Name string     `json:"name"`
	Host string     `json:"host,omitempty"`
}

// Plan is the body of GET /api/deployments/{name}/plan: what apply would
// change to bring the deployment to kvm-compose.yaml as it is now.
type Plan struct {
	Deployment string       `json:"deployment"`
	Changes    []PlanChange `json:"changes"`
	Unchanged  []PlanObject `json:"unchanged"`
	// Timeline is the time line kvm-compose.yaml has now, which the action
	// timeline runs; nil when it has none. apply does not run it.
	Timeline *PlanTimeline `json:"timeline,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Changes) == 0 }
