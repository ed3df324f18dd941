package ovn

import "github.com/ovn-org/libovsdb/model"

// The rows this package reads and writes, with only the columns it uses:
// libovsdb maps each struct to its table by the ovsdb tags. Every row the
// package makes carries the owner keys in external_ids, so what a
// deployment made is found again by them alone.

// Owner keys in external_ids.
const (
	// KeyDeployment names the deployment that made a row.
	KeyDeployment = "testbedos-deployment"
	// KeyObject names the logical switch or router a row belongs to.
	KeyObject = "testbedos-object"
)

// LogicalSwitch is a row of the northbound Logical_Switch table.
type LogicalSwitch struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Ports       []string          `ovsdb:"ports"`
	ACLs        []string          `ovsdb:"acls"`
	DNSRecords  []string          `ovsdb:"dns_records"`
	OtherConfig map[string]string `ovsdb:"other_config"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// LogicalSwitchPort is a row of Logical_Switch_Port.
type LogicalSwitchPort struct {
	UUID             string            `ovsdb:"_uuid"`
	Name             string            `ovsdb:"name"`
	Type             string            `ovsdb:"type"`
	Options          map[string]string `ovsdb:"options"`
	Addresses        []string          `ovsdb:"addresses"`
	DynamicAddresses *string           `ovsdb:"dynamic_addresses"`
	DHCPv4Options    *string           `ovsdb:"dhcpv4_options"`
	Up               *bool             `ovsdb:"up"`
	ExternalIDs      map[string]string `ovsdb:"external_ids"`
}

// LogicalRouter is a row of Logical_Router.
type LogicalRouter struct {
	UUID         string            `ovsdb:"_uuid"`
	Name         string            `ovsdb:"name"`
	Ports        []string          `ovsdb:"ports"`
	StaticRoutes []string          `ovsdb:"static_routes"`
	NAT          []string          `ovsdb:"nat"`
	ExternalIDs  map[string]string `ovsdb:"external_ids"`
}

// LogicalRouterPort is a row of Logical_Router_Port.
type LogicalRouterPort struct {
	UUID           string            `ovsdb:"_uuid"`
	Name           string            `ovsdb:"name"`
	MAC            string            `ovsdb:"mac"`
	Networks       []string          `ovsdb:"networks"`
	GatewayChassis []string          `ovsdb:"gateway_chassis"`
	ExternalIDs    map[string]string `ovsdb:"external_ids"`
}

// GatewayChassis is a row of Gateway_Chassis.
type GatewayChassis struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	ChassisName string            `ovsdb:"chassis_name"`
	Priority    int               `ovsdb:"priority"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// LogicalRouterStaticRoute is a row of Logical_Router_Static_Route.
type LogicalRouterStaticRoute struct {
	UUID        string            `ovsdb:"_uuid"`
	IPPrefix    string            `ovsdb:"ip_prefix"`
	Nexthop     string            `ovsdb:"nexthop"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// NAT is a row of NAT.
type NAT struct {
	UUID        string            `ovsdb:"_uuid"`
	Type        string            `ovsdb:"type"`
	ExternalIP  string            `ovsdb:"external_ip"`
	LogicalIP   string            `ovsdb:"logical_ip"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// ACL is a row of ACL.
type ACL struct {
	UUID        string            `ovsdb:"_uuid"`
	Priority    int               `ovsdb:"priority"`
	Direction   string            `ovsdb:"direction"`
	Match       string            `ovsdb:"match"`
	Action      string            `ovsdb:"action"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// DHCPOptions is a row of DHCP_Options.
type DHCPOptions struct {
	UUID        string            `ovsdb:"_uuid"`
	CIDR        string            `ovsdb:"cidr"`
	Options     map[string]string `ovsdb:"options"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// DNS is a row of DNS.
type DNS struct {
	UUID        string            `ovsdb:"_uuid"`
	Records     map[string]string `ovsdb:"records"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// nbTables is the part of OVN_Northbound this package uses.
var nbTables = dbTables{"OVN_Northbound", map[string]model.Model{
	"Logical_Switch":              &LogicalSwitch{},
	"Logical_Switch_Port":         &LogicalSwitchPort{},
	"Logical_Router":              &LogicalRouter{},
	"Logical_Router_Port":         &LogicalRouterPort{},
	"Gateway_Chassis":             &GatewayChassis{},
	"Logical_Router_Static_Route": &LogicalRouterStaticRoute{},
	"NAT":                         &NAT{},
	"ACL":                         &ACL{},
	"DHCP_Options":                &DHCPOptions{},
	"DNS":                         &DNS{},
}}

// OpenvSwitch is the one row of the local Open_vSwitch table.
type OpenvSwitch struct {
	UUID        string            `ovsdb:"_uuid"`
	Bridges     []string          `ovsdb:"bridges"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// Bridge is a row of Bridge.
type Bridge struct {
	UUID         string            `ovsdb:"_uuid"`
	Name         string            `ovsdb:"name"`
	Ports        []string          `ovsdb:"ports"`
	DatapathType string            `ovsdb:"datapath_type"`
	ExternalIDs  map[string]string `ovsdb:"external_ids"`
}

// Port is a row of Port.
type Port struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Interfaces  []string          `ovsdb:"interfaces"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// Interface is a row of Interface.
type Interface struct {
	UUID        string            `ovsdb:"_uuid"`
	Name        string            `ovsdb:"name"`
	Type        string            `ovsdb:"type"`
	OFPort      *int              `ovsdb:"ofport"`
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// ovsTables is the part of Open_vSwitch this package uses.
var ovsTables = dbTables{"Open_vSwitch", map[string]model.Model{
	"Open_vSwitch": &OpenvSwitch{},
	"Bridge":       &Bridge{},
	"Port":         &Port{},
	"Interface":    &Interface{},
}}

// dbTables is a database's name and the structs of the tables used.
type dbTables struct {
	name   string
	tables map[string]model.Model
}
