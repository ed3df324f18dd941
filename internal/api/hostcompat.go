package api

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// The original TestbedOS's host.json has no name, cpus or memory_mb (they
// default from the machine), carries its ssh fields, and an ovn section the
// ovn network backend reads (bridge_mappings give the provider networks).
// Its kvm-compose-config.json lists hosts by name under
// testbed_host_ssh_config.

// DefaultProviderNetwork is the original's default bridge mapping: the
// provider network public, on bridge br-ex, whose host side is 172.16.1.1/24.
var DefaultProviderNetwork = BridgeMapping{Network: "public", Bridge: "br-ex", Gateway: "172.16.1.1/24"}

// OVNConfig is host.json's ovn section, kept as written for the ovn network
// backend.
type OVNConfig struct {
	ChassisName     string `json:"chassis_name,omitempty"`
	Bridge          string `json:"bridge,omitempty"`
	EncapType       string `json:"encap_type,omitempty"`
	EncapIP         string `json:"encap_ip,omitempty"`
	MainOVNRemote   string `json:"main_ovn_remote,omitempty"`
	ClientOVNRemote string `json:"client_ovn_remote,omitempty"`
	// Remote is the spelling of the original's example host.json.
	Remote         string          `json:"remote,omitempty"`
	BridgeMappings []BridgeMapping `json:"bridge_mappings,omitempty"`
}

// BridgeMapping maps a provider network (a localnet port's network_name) to
// a host bridge and the host's address on it. In JSON it is the original's
// three-element array ["public", "br-ex", "172.16.1.1/24"].
type BridgeMapping struct {
	Network string
	Bridge  string
	Gateway string // CIDR
}

// MarshalJSON writes the original's array form.
func (m BridgeMapping) MarshalJSON() ([]byte, error) {
	return json.Marshal([3]string{m.Network, m.Bridge, m.Gateway})
}

// UnmarshalJSON reads the original's array form.
func (m *BridgeMapping) UnmarshalJSON(data []byte) error {
	var a []string
	if err := json.Unmarshal(data, &a); err != nil || len(a) != 3 {
		return fmt.Errorf("a bridge mapping is [network, bridge, gateway CIDR], e.g. [\"public\", \"br-ex\", \"172.16.1.1/24\"]")
	}
	m.Network, m.Bridge, m.Gateway = a[0], a[1], a[2]
	return nil
}

// ProviderNetworks are the host's provider networks by name: host.json's
// bridge mappings, or the original's default (public) without any.
func (h HostConfig) ProviderNetworks() map[string]BridgeMapping {
	out := map[string]BridgeMapping{}
	if h.OVN != nil {
		for _, m := range h.OVN.BridgeMappings {
			out[m.Network] = m
		}
	}
	if len(out) == 0 {
		out[DefaultProviderNetwork.Network] = DefaultProviderNetwork
	}
	return out
}

// validateOVN names what is wrong with the ovn section.
func (o *OVNConfig) validate() []string {
	if o == nil {
		return nil
	}
	var probs []string
	seen := map[string]bool{}
	for i, m := range o.BridgeMappings {
		if m.Network == "" || seen[m.Network] {
			probs = append(probs, fmt.Sprintf("ovn.bridge_mappings[%d]: network %q is empty or given twice", i, m.Network))
		}
		seen[m.Network] = true
		if p, err := netip.ParsePrefix(m.Gateway); err != nil || !p.Addr().Is4() {
			probs = append(probs, fmt.Sprintf("ovn.bridge_mappings[%d]: gateway %q: want an IPv4 address with prefix, e.g. 172.16.1.1/24", i, m.Gateway))
		}
	}
	return probs
}

// HostDefaults are what a host.json without name, cpus or memory_mb takes
// from the machine.
type HostDefaults struct {
	Name     string
	CPUs     int
	MemoryMB int64
}

// WithDefaults fills the fields the original's host.json leaves out.
func (h HostConfig) WithDefaults(d HostDefaults) HostConfig {
	if h.Name == "" {
		h.Name = d.Name
	}
	if h.CPUs == 0 {
		h.CPUs = d.CPUs
	}
	if h.MemoryMB == 0 {
		h.MemoryMB = d.MemoryMB
	}
	return h
}

// OriginalClusterHost is one host of the original's kvm-compose-config.json
// (an older release spells ip as hostname).
type OriginalClusterHost struct {
	IP            string     `json:"ip,omitempty"`
	Hostname      string     `json:"hostname,omitempty"`
	User          string     `json:"user,omitempty"`
	IdentityFile  string     `json:"identity_file,omitempty"`
	TestbedNIC    string     `json:"testbed_nic,omitempty"`
	MainInterface string     `json:"main_interface,omitempty"`
	IsMainHost    bool       `json:"is_main_host,omitempty"`
	OVN           *OVNConfig `json:"ovn,omitempty"`
}

// Host is the entry as this project's host.json, named name.
func (o OriginalClusterHost) Host(name string) HostConfig {
	ip := o.IP
	if ip == "" {
		ip = o.Hostname
	}
	return HostConfig{Name: name, IP: ip, TestbedNIC: o.TestbedNIC, IsMainHost: o.IsMainHost, OVN: o.OVN,
		MainInterface: o.MainInterface, User: o.User, IdentityFile: o.IdentityFile}
}
