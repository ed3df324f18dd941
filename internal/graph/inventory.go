package graph

import (
	"fmt"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// Inventory is a deployment's guests with the addresses other tools reach
// them at.
type Inventory struct {
	Deployment string     `json:"deployment"`
	Guests     []InvGuest `json:"guests"`
}

// InvGuest is one guest of an Inventory.
type InvGuest struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Host string `json:"host"`
	// Address is the first interface's IP without its prefix (a lease for a
	// dynamic one); empty when the guest has none yet.
	Address string `json:"address"`
	// Addresses are every interface's, with prefix.
	Addresses []string `json:"addresses"`
	// FQDN is <guest>.<deployment>.tbos.
	FQDN string `json:"fqdn"`
	// SSHUser and SSHKey are how the server logs into a VM (libvirt).
	SSHUser string `json:"ssh_user,omitempty"`
	SSHKey  string `json:"ssh_key,omitempty"`
	// Namespace (netns) and Container (docker) name the guest on its host.
	Namespace string `json:"namespace,omitempty"`
	Container string `json:"container,omitempty"`
}

// VM logins: the server's user on libvirt guests and where the
// deployment's key is for the user to read.
type VMLogin struct {
	User string
	Key  string
}

// BuildInventory lists st's guests; live, when not nil, is GET …/guests'
// answer, whose addresses (leases included) win over the state's.
func BuildInventory(st *topology.State, live []api.Guest, vm VMLogin) Inventory {
	leased := map[string]map[string]string{}
	for _, g := range live {
		m := map[string]string{}
		for _, in := range g.Interfaces {
			if in.IP != "" {
				m[in.Name] = in.IP
			}
		}
		leased[g.Name] = m
	}
	inv := Inventory{Deployment: st.Deployment, Guests: []InvGuest{}}
	for _, g := range st.Guests {
		ig := InvGuest{Name: g.Name, Kind: g.Kind, Host: g.Host, FQDN: g.Name + "." + st.Deployment + ".tbos", Addresses: []string{}}
		for _, in := range g.Interfaces {
			addr := in.Address
			if ip := leased[g.Name][in.Name]; ip != "" {
				addr = ip
			}
			if addr == "" {
				continue
			}
			ig.Addresses = append(ig.Addresses, addr)
			if ig.Address == "" {
				ig.Address = bareIP(addr)
			}
		}
		switch {
		case g.Netns != nil:
			ig.Namespace = g.Netns.Namespace
		case g.Docker != nil:
			ig.Container = g.Docker.Container
		case g.Libvirt != nil:
			ig.SSHUser, ig.SSHKey = vm.User, vm.Key
		}
		inv.Guests = append(inv.Guests, ig)
	}
	return inv
}

func bareIP(cidr string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		return p.Addr().String()
	}
	return cidr
}

// Ansible renders inv as an Ansible YAML inventory: one group per guest
// kind under all, each guest with ansible_host; VMs with the user and key
// the server logs in with, containers through the docker connection,
// namespaces with their name (testbedos_netns) for nsenter-style plugins.
func Ansible(inv Inventory) ([]byte, error) {
	groups := map[string]map[string]map[string]any{}
	for _, g := range inv.Guests {
		vars := map[string]any{"testbedos_kind": g.Kind, "testbedos_host": g.Host, "testbedos_addresses": g.Addresses}
		if g.Address != "" {
			vars["ansible_host"] = g.Address
		}
		switch {
		case g.Container != "":
			vars["ansible_connection"] = "community.docker.docker"
			vars["ansible_host"] = g.Container
			if g.Address != "" {
				vars["testbedos_address"] = g.Address
			}
		case g.Namespace != "":
			vars["testbedos_netns"] = g.Namespace
		case g.SSHUser != "":
			vars["ansible_user"] = g.SSHUser
			if g.SSHKey != "" {
				vars["ansible_ssh_private_key_file"] = g.SSHKey
			}
			vars["ansible_ssh_common_args"] = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
		}
		if groups[g.Kind] == nil {
			groups[g.Kind] = map[string]map[string]any{}
		}
		groups[g.Kind][g.Name] = vars
	}
	children := map[string]any{}
	for kind, hosts := range groups {
		children[kind] = map[string]any{"hosts": hosts}
	}
	doc := map[string]any{"all": map[string]any{
		"vars":     map[string]any{"testbedos_deployment": inv.Deployment},
		"children": children,
	}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Ansible inventory of TestbedOS deployment "+inv.Deployment+"\n"), data...), nil
}

// sshValue refuses a value that would end an ssh_config line.
func sshValue(s string) string {
	if strings.ContainsAny(s, "\n\r\"") {
		return ""
	}
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

// SSHConfig renders inv as an ssh_config file (ssh -F FILE GUEST): one
// Host block per guest with an address, named by the guest and its FQDN.
func SSHConfig(inv Inventory) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# ssh_config of TestbedOS deployment %s: ssh -F THIS_FILE GUEST\n", inv.Deployment)
	for _, g := range inv.Guests {
		if g.Address == "" {
			continue
		}
		fmt.Fprintf(&b, "\n# %s guest on host %s\nHost %s %s\n  HostName %s\n", g.Kind, g.Host, g.Name, g.FQDN, g.Address)
		if g.SSHUser != "" {
			fmt.Fprintf(&b, "  User %s\n", sshValue(g.SSHUser))
		}
		if k := sshValue(g.SSHKey); k != "" {
			fmt.Fprintf(&b, "  IdentityFile %s\n  IdentitiesOnly yes\n", k)
		}
		b.WriteString("  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")
	}
	return []byte(b.String())
}

// Hosts renders inv as /etc/hosts lines: every guest's first address with
// its FQDN and its name.
func Hosts(inv Inventory) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# /etc/hosts lines of TestbedOS deployment %s\n", inv.Deployment)
	for _, g := range inv.Guests {
		if g.Address != "" {
			fmt.Fprintf(&b, "%s\t%s %s\n", g.Address, g.FQDN, g.Name)
		}
	}
	return []byte(b.String())
}
