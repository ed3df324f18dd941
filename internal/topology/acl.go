package topology

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/testbedos/testbedos/internal/acl"
)

// ACLSection is network.acl (or the original's network.ovn.acl): per-switch
// OVN ACLs, plus a shortcut that drops all IP traffic no rule allows.
type ACLSection struct {
	ApplyDenyAll bool                 `yaml:"apply_deny_all"`
	Switches     map[string][]ACLRule `yaml:"switches"`
}

// ACLRule is one OVN ACL of a switch.
type ACLRule struct {
	Direction string `yaml:"direction" json:"direction"` // ACLToLport | ACLFromLport
	Priority  int    `yaml:"priority" json:"priority"`   // 0..ACLMaxPriority, higher first
	Match     string `yaml:"match" json:"match"`         // an OVN match expression (internal/acl)
	Action    string `yaml:"action" json:"action"`       // one of ACLActions
}

// ACL directions, as OVN names them.
const (
	// ACLToLport filters traffic the switch delivers to a port.
	ACLToLport = "to-lport"
	// ACLFromLport filters traffic that enters the switch from a port.
	ACLFromLport = "from-lport"
)

// ACLMaxPriority is OVN's highest ACL priority.
const ACLMaxPriority = 32767

// ACLActions are the actions an ACL may take.
var ACLActions = []string{"allow", "allow-related", "allow-stateless", "drop", "reject", "pass"}

// ACL is the resolved access control of a deployment (State.ACL).
type ACL struct {
	// DenyAll drops, on every switch with a guest, the IP traffic of its
	// ports that no rule allows (ARP and IPv6 neighbour discovery pass).
	DenyAll bool `json:"apply_deny_all,omitempty"`
	// Switches holds each switch's rules by switch name, as written.
	Switches map[string][]ACLRule `json:"switches,omitempty"`
}

// ACLSpec returns the acl section and the field path it was written
// under, whichever spelling was used; nil when there is none.
func (c *Config) ACLSpec() (*ACLSection, string) {
	if c.Network.ACL == nil && c.Network.OVN != nil && c.Network.OVN.ACL != nil {
		return c.Network.OVN.ACL, "network.ovn.acl"
	}
	return c.Network.ACL, "network.acl"
}

// checkACL checks the rules without the guests: switches, fields, matches.
func (c *Config) checkACL(ps *problems, subnets map[string]netip.Prefix) {
	if c.Network.ACL != nil && c.Network.OVN != nil && c.Network.OVN.ACL != nil {
		ps.addf("network.ovn.acl", "cannot be given together with network.acl: use one spelling")
	}
	sec, base := c.ACLSpec()
	if sec == nil {
		return
	}
	for _, sw := range sortedKeys(sec.Switches) {
		swPath := base + ".switches." + sw
		if _, ok := subnets[sw]; !ok {
			ps.addf(swPath, "is not a switch of network.switches (switches: %s)", joinKeys(subnets))
		}
		for i, r := range sec.Switches[sw] {
			rp := fmt.Sprintf("%s[%d]", swPath, i)
			switch r.Direction {
			case ACLToLport, ACLFromLport:
			case "":
				ps.addf(rp+".direction", "is required (%s or %s)", ACLToLport, ACLFromLport)
			default:
				ps.addf(rp+".direction", "%q is not a direction (use %s or %s)", r.Direction, ACLToLport, ACLFromLport)
			}
			switch {
			case !c.has(rp + ".priority"):
				ps.addf(rp+".priority", "is required (0 to %d, higher wins)", ACLMaxPriority)
			case r.Priority < 0 || r.Priority > ACLMaxPriority:
				ps.addf(rp+".priority", "%d is out of range (0 to %d)", r.Priority, ACLMaxPriority)
			}
			if !knownAction(r.Action) {
				if r.Action == "" {
					ps.addf(rp+".action", "is required (one of %s)", joinList(ACLActions))
				} else {
					ps.addf(rp+".action", "%q is not an ACL action (use one of %s)", r.Action, joinList(ACLActions))
				}
			}
			c.checkMatch(ps, rp+".match", r)
		}
	}
}

func (c *Config) checkMatch(ps *problems, field string, r ACLRule) {
	if r.Match == "" {
		ps.addf(field, "is required (an OVN match such as \"ip4.src == 10.0.0.10 && icmp4\"; 1 matches everything)")
		return
	}
	e, err := acl.Parse(r.Match)
	if err == nil {
		_, err = acl.Lower(e)
	}
	var perr *acl.Error
	switch {
	case errors.As(err, &perr):
		ps.addf(field, "%q: %s (column %d, token %q)", r.Match, perr.Msg, perr.Pos, perr.Token)
		return
	case err != nil:
		ps.addf(field, "%q: %v", r.Match, err)
		return
	}
	if r.Direction == ACLFromLport {
		for _, ref := range acl.PortRefs(e) {
			if ref.Field == "outport" {
				ps.addf(field, "%q: outport is not known yet in a from-lport rule (column %d, token \"outport\"); use inport, or a to-lport rule", r.Match, ref.Pos)
				break
			}
		}
	}
}

// resolveACL copies the rules into the state and checks the port names
// their matches use against the guests.
func (c *Config) resolveACL(ps *problems, st *State) {
	sec, base := c.ACLSpec()
	if sec == nil || !sec.ApplyDenyAll && len(sec.Switches) == 0 {
		return
	}
	st.ACL = &ACL{DenyAll: sec.ApplyDenyAll, Switches: map[string][]ACLRule{}}
	for _, sw := range sortedKeys(sec.Switches) {
		ports := ACLPorts(st, sw)
		for i, r := range sec.Switches[sw] {
			field := fmt.Sprintf("%s.switches.%s[%d].match", base, sw, i)
			e, err := acl.Parse(r.Match)
			if err != nil {
				continue // reported by checkACL
			}
			for _, ref := range acl.PortRefs(e) {
				if _, ok := ports[ref.Name]; !ok {
					ps.addf(field, "%q: %s %q is not a port of switch %s (column %d; ports: %s)", r.Match, ref.Field, ref.Name, sw, ref.Pos, joinKeys(ports))
				}
			}
		}
		st.ACL.Switches[sw] = append([]ACLRule(nil), sec.Switches[sw]...)
	}
}

// ACLPorts names the ports of switch sw for inport and outport: every
// guest interface on it is "<guest>-<interface>" (web-eth0), and a guest
// with one interface on the switch is also just "<guest>". The value is
// the interface's host-side end, the bridge port the rule matches on.
func ACLPorts(st *State, sw string) map[string]string {
	ports := map[string]string{}
	for _, g := range st.Guests {
		var on []Interface
		for _, ifc := range g.Interfaces {
			if ifc.Switch == sw {
				on = append(on, ifc)
				ports[g.Name+"-"+ifc.Name] = ifc.HostName
			}
		}
		if len(on) == 1 {
			if _, taken := ports[g.Name]; !taken {
				ports[g.Name] = on[0].HostName
			}
		}
	}
	return ports
}

func knownAction(a string) bool {
	for _, k := range ACLActions {
		if a == k {
			return true
		}
	}
	return false
}

func joinKeys[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	return joinList(sortedKeys(m))
}

func joinList(l []string) string {
	s := append([]string(nil), l...)
	sort.Strings(s)
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// ACLTableName is the nftables table (bridge family) of the deployment's
// ACLs, the same on every host.
func ACLTableName(deployment string) string { return Prefix(deployment) + "-acl" }
