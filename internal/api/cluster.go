package api

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// HostConfig is config/host.json: this host as the cluster knows it.
type HostConfig struct {
	Name string `json:"name"`
	// IP is the address other hosts reach this one at (and VXLAN uses).
	IP string `json:"ip"`
	// TestbedNIC is the interface holding IP.
	TestbedNIC string `json:"testbed_nic"`
	IsMainHost bool   `json:"is_main_host"`
	CPUs       int    `json:"cpus"`
	MemoryMB   int64  `json:"memory_mb"`
	// OVN is the original's ovn section (hostcompat.go), kept for the ovn
	// network backend; its bridge_mappings name the provider networks.
	OVN *OVNConfig `json:"ovn,omitempty"`
	// The original's ssh fields, kept as written; nothing here uses them.
	MainInterface string `json:"main_interface,omitempty"`
	User          string `json:"user,omitempty"`
	IdentityFile  string `json:"identity_file,omitempty"`
}

// Validate names every field that is wrong, in one error of category
// ErrInvalid.
func (h HostConfig) Validate() error {
	var probs []string
	if !ValidName(h.Name) {
		probs = append(probs, fmt.Sprintf("name %q: want %s", h.Name, NamePattern))
	}
	if ip := net.ParseIP(h.IP); ip == nil || ip.IsUnspecified() {
		probs = append(probs, fmt.Sprintf("ip %q: want an IP address of this host", h.IP))
	}
	if len(h.TestbedNIC) > 15 || strings.ContainsAny(h.TestbedNIC, "/ \t\n") {
		probs = append(probs, fmt.Sprintf("testbed_nic %q: not an interface name", h.TestbedNIC))
	}
	if h.CPUs < 1 {
		probs = append(probs, fmt.Sprintf("cpus %d: want at least 1", h.CPUs))
	}
	if h.MemoryMB < 1 {
		probs = append(probs, fmt.Sprintf("memory_mb %d: want at least 1", h.MemoryMB))
	}
	probs = append(probs, h.OVN.validate()...)
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: host.json: %s", ErrInvalidHost, strings.Join(probs, "; "))
}

// ErrInvalidHost: a host.json with wrong fields (422).
var ErrInvalidHost = Categorized(ErrInvalid, "invalid host")

// ClusterHost is one host of kvm-compose-config.json.
type ClusterHost struct {
	HostConfig
	// URL is where the main reaches the host's agent API (clients only).
	URL string `json:"url,omitempty"`
	// Fingerprint pins the host's certificate.
	Fingerprint string     `json:"fingerprint,omitempty"`
	JoinedAt    *time.Time `json:"joined_at,omitempty"`
}

// ClusterConfig is config/kvm-compose-config.json, the body of GET
// /api/config/cluster: the main's host.json and every joined client's.
type ClusterConfig struct {
	Hosts []ClusterHost `json:"hosts"`
	// The original's spelling, accepted by POST /api/config/cluster: the
	// hosts by name; the key locations are kept as written and unused.
	TestbedHostSSHConfig  map[string]OriginalClusterHost `json:"testbed_host_ssh_config,omitempty"`
	SSHPublicKeyLocation  string                         `json:"ssh_public_key_location,omitempty"`
	SSHPrivateKeyLocation string                         `json:"ssh_private_key_location,omitempty"`
}

// JoinRequest is the body of POST /api/cluster.
type JoinRequest struct {
	Name string     `json:"name"`
	Host HostConfig `json:"host"`
	// Fingerprint is the joining host's own certificate's.
	Fingerprint string `json:"fingerprint"`
	// URL is the joining host's agent API, https://<host ip>:<port>.
	URL string `json:"url"`
	// Certificate is the joining host's own certificate, PEM (the one
	// Fingerprint names): an ovn main trusts it on its southbound
	// database.
	Certificate string `json:"certificate,omitempty"`
}

// Validate checks a join request's fields.
func (j JoinRequest) Validate() error {
	if !ValidName(j.Name) {
		return fmt.Errorf("%w: name %q: want %s", ErrBadRequest, j.Name, NamePattern)
	}
	if j.Name != j.Host.Name {
		return fmt.Errorf("%w: name %q differs from host.name %q", ErrBadRequest, j.Name, j.Host.Name)
	}
	if err := j.Host.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	u, err := url.Parse(j.URL)
	if err != nil || u.Scheme != "https" || u.Port() == "" || u.Path != "" && u.Path != "/" {
		return fmt.Errorf("%w: url %q: want https://<host ip>:<port>", ErrBadRequest, j.URL)
	}
	if hip, uip := net.ParseIP(j.Host.IP), net.ParseIP(u.Hostname()); hip == nil || uip == nil || !hip.Equal(uip) {
		return fmt.Errorf("%w: url %q: the main reaches a member at its host.ip %s", ErrBadRequest, j.URL, j.Host.IP)
	}
	if j.Fingerprint == "" {
		return fmt.Errorf("%w: fingerprint is missing", ErrBadRequest)
	}
	return nil
}

// JoinAnswer is the 200 answer of POST /api/cluster.
type JoinAnswer struct {
	Name string `json:"name"`
	// Secret authenticates the member on every later call, both ways.
	Secret string `json:"secret"`
	// Fingerprint is the main's certificate's.
	Fingerprint string `json:"fingerprint"`
	// OVN, from a main whose network backend is ovn, is where the
	// member's ovn-controller joins.
	OVN *OVNJoin `json:"ovn,omitempty"`
}

// OVNJoin is where a member's ovn-controller reaches the main's southbound
// database: over SSL, trusting the main's certificate (PEM) alone, with
// the member's own certificate as its client certificate.
type OVNJoin struct {
	Southbound  string `json:"southbound"`
	Certificate string `json:"certificate"`
}

// Member is one joined client as GET /api/cluster lists it.
type Member struct {
	Name          string     `json:"name"`
	Host          HostConfig `json:"host"`
	URL           string     `json:"url"`
	Fingerprint   string     `json:"fingerprint"`
	JoinedAt      time.Time  `json:"joined_at"`
	LastHeartbeat *time.Time `json:"last_heartbeat"`
	Misses        int        `json:"misses"`
}

// MemberList is the body of GET /api/cluster.
type MemberList struct {
	Members []Member `json:"members"`
}

// AgentHealth is the body of a client's GET /api/agent/health.
type AgentHealth struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// ErrUnknownMember: no member of that name (404).
var ErrUnknownMember = Categorized(ErrNotFound, "no such cluster member")

// ErrNameTaken: a live member with another certificate holds the name (409).
var ErrNameTaken = Categorized(ErrConflict, "the name is held by another cluster member")
