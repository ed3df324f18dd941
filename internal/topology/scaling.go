package topology

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The original TestbedOS writes scaling inside the libvirt (or docker)
// section, with an interfaces map keyed by switch instead of the machine's
// network list, and shared_setup for the script every clone runs:
//
//	libvirt:
//	  scaling:
//	    count: 3
//	    shared_setup: setup.sh
//	    interfaces:
//	      sw0: {clones: [0, 1, 2], gateway: 10.0.0.1, ip_type: dynamic,
//	            mac_range: {from: "00:00:00:00:00:01", to: "00:00:00:00:00:03"}}
//
// hoistScaling turns that into this project's spelling (machine-level
// scaling, one network entry per interface, the setup script) before the
// checks run, so every check and the resolver see one shape.

// ScalingInterface is one entry of the original's scaling.interfaces.
type ScalingInterface struct {
	// Clones lists the 0-based clones that get the interface; empty is all.
	Clones   []int        `yaml:"clones"`
	Gateway  string       `yaml:"gateway"`
	IPType   IPType       `yaml:"ip_type"`
	MACRange *IPRangeSpec `yaml:"mac_range"`
	Netem    *Netem       `yaml:"netem"`
}

// IPType is the original's ip_type: "dynamic", or {ip_range: {from, to}}.
type IPType struct {
	Dynamic bool
	IPRange *IPRangeSpec `yaml:"ip_range"`
}

// CloneScript is an entry of the original's clone_setup / clone_run.
type CloneScript struct {
	Script string `yaml:"script"`
	Clones []int  `yaml:"clones"`
}

// scalarStruct decodes the scalar spellings of struct types: ip_type:
// dynamic. ok is false when t has none.
func scalarStruct(n *yaml.Node, v reflect.Value) (ok bool, msg string) {
	if v.Type() != reflect.TypeOf(IPType{}) || n.Kind != yaml.ScalarNode {
		return false, ""
	}
	if n.Value != IPDynamic {
		return true, fmt.Sprintf("%q is not an ip_type: give dynamic or {ip_range: {from, to}}", n.Value)
	}
	v.Set(reflect.ValueOf(IPType{Dynamic: true}))
	return true, ""
}

// hoistScaling moves the original's scaling of machine i into this
// project's spelling.
func (c *Config) hoistScaling(ps *problems, i int) {
	m := &c.Machines[i]
	mp := fmt.Sprintf("machines[%d]", i)
	var inner *Scaling
	var sp string
	switch {
	case m.Libvirt != nil && m.Libvirt.Scaling != nil:
		inner, sp = m.Libvirt.Scaling, mp+".libvirt.scaling"
	case m.Docker != nil && m.Docker.Scaling != nil:
		inner, sp = m.Docker.Scaling, mp+".docker.scaling"
	case m.Scaling != nil:
		sp = mp + ".scaling"
	default:
		return
	}
	if inner != nil {
		if m.Scaling != nil {
			ps.addf(sp, "cannot be given together with %s.scaling: use one spelling", mp)
			return
		}
		m.Scaling = inner
		c.alias(sp, mp+".scaling")
	}
	s := m.Scaling
	if s.SharedSetup != "" {
		if setup := m.setupScript(); *setup != "" {
			ps.addf(sp+".shared_setup", "cannot be given together with the section's setup_script: use one")
		} else {
			*setup = s.SharedSetup
			c.alias(sp+".shared_setup", c.setupField(mp))
		}
	}
	for _, f := range cloneScriptFields(s) {
		c.alias(sp+strings.TrimPrefix(f.field, "scaling"), mp+"."+f.field)
		entry := strings.TrimSuffix(f.field, ".script")
		c.alias(sp+strings.TrimPrefix(entry, "scaling"), mp+"."+entry)
		c.alias(sp+strings.TrimPrefix(entry, "scaling")+".clones", mp+"."+entry+".clones")
		if f.script == "" {
			ps.addf(mp+"."+f.field, "is required")
		}
		if len(f.clones) == 0 {
			ps.addf(mp+"."+entry+".clones", "must list the clones (0..%d) that run the script", s.Count-1)
		}
		for _, k := range f.clones {
			if k < 0 || k >= s.Count {
				ps.addf(mp+"."+f.field, "names clone %d: the clones are 0..%d", k, s.Count-1)
				break
			}
		}
	}
	if len(s.Interfaces) == 0 {
		return
	}
	if len(m.Network) > 0 {
		ps.addf(sp+".interfaces", "cannot be given together with %s.network: use one spelling", mp)
		return
	}
	// The map keeps no order: YAML order is line order.
	names := make([]string, 0, len(s.Interfaces))
	for name := range s.Interfaces {
		names = append(names, name)
	}
	sort.Slice(names, func(a, b int) bool {
		return c.line(sp+".interfaces."+names[a]) < c.line(sp+".interfaces."+names[b])
	})
	for _, sw := range names {
		ip := sp + ".interfaces." + sw
		si := s.Interfaces[sw]
		j := len(m.Network)
		np := fmt.Sprintf("%s.network[%d]", mp, j)
		a := NetworkAttachment{Switch: sw, Gateway: si.Gateway, Netem: si.Netem}
		c.alias(ip, np)
		c.alias(ip, np+".switch")
		c.alias(ip+".gateway", np+".gateway")
		c.alias(ip+".netem", np+".netem")
		n := s.Count // clones with the interface
		if len(si.Clones) > 0 && !allClones(si.Clones, s.Count) {
			// The original gives the interface to the listed clones only.
			a.clones = slices.Compact(slices.Sorted(slices.Values(si.Clones)))
			n = len(a.clones)
			for _, k := range a.clones {
				if k < 0 || k >= s.Count {
					ps.addf(ip+".clones", "names clone %d: the clones are 0..%d", k, s.Count-1)
					break
				}
			}
		}
		switch t := si.IPType; {
		case t.Dynamic:
			a.IP = IPDynamic
		case t.IPRange != nil:
			a.IP = t.IPRange.From
			c.alias(ip+".ip_type.ip_range.from", np+".ip")
			from, err1 := netip.ParseAddr(t.IPRange.From)
			to, err2 := netip.ParseAddr(t.IPRange.To)
			if err1 == nil && err2 == nil && n > 0 && rangeSize(from, to) < n {
				ps.addf(ip+".ip_type.ip_range", "%s-%s holds fewer than the %d clones with the interface", from, to, n)
			}
		default:
			ps.addf(ip+".ip_type", "is required: dynamic or {ip_range: {from, to}}")
		}
		if r := si.MACRange; r != nil {
			from, err := parseMAC(r.From)
			if err != nil {
				ps.addf(ip+".mac_range.from", "%s %v", r.From, err)
			} else if to, err := parseMAC(r.To); err != nil {
				ps.addf(ip+".mac_range.to", "%s %v", r.To, err)
			} else if macDistance(from, to) < uint64(max(n, 1))-1 {
				ps.addf(ip+".mac_range", "%s-%s holds fewer than the %d clones with the interface", from, to, n)
			} else {
				a.macFrom = from
			}
		}
		m.Network = append(m.Network, a)
	}
}

// setupScript points at the setup_script of the machine's kind section;
// netns, the default kind, gets its section when it has none.
func (m *Machine) setupScript() *string {
	switch {
	case m.Libvirt != nil:
		return &m.Libvirt.SetupScript
	case m.Docker != nil:
		return &m.Docker.SetupScript
	case m.Netns == nil:
		m.Netns = &NetnsSection{}
	}
	return &m.Netns.SetupScript
}

// setupField is the field of machine mp's setup script.
func (c *Config) setupField(mp string) string {
	for _, k := range []string{"libvirt", "docker", "netns"} {
		if _, ok := c.lines[mp+"."+k]; ok {
			return mp + "." + k + ".setup_script"
		}
	}
	return mp + ".netns.setup_script"
}

// alias makes problems of field to report the line of from.
func (c *Config) alias(from, to string) {
	if l, ok := c.lines[from]; ok {
		if _, had := c.lines[to]; !had {
			c.lines[to] = l
		}
	}
}

// position is the 1-based place of clone k (1-based) among the clones that
// have the interface, 0 when it has not got it.
func (a *NetworkAttachment) position(k int) int {
	if a.clones == nil {
		return k
	}
	if i, ok := slices.BinarySearch(a.clones, k-1); ok {
		return i + 1
	}
	return 0
}

// cloneCount is how many clones of m have the interface.
func (a *NetworkAttachment) cloneCount(m *Machine) int {
	if a.clones == nil {
		return m.instanceCount()
	}
	return len(a.clones)
}

// allClones reports whether clones is exactly the set 0..count-1.
func allClones(clones []int, count int) bool {
	set := slices.Compact(slices.Sorted(slices.Values(clones)))
	if len(set) != count {
		return false
	}
	for k, c := range set {
		if c != k {
			return false
		}
	}
	return true
}

// rangeSize counts the addresses from..to, capped at MaxGuests+1.
func rangeSize(from, to netip.Addr) int {
	n := 0
	for a := from; a.IsValid() && a.Compare(to) <= 0 && n <= MaxGuests; a = a.Next() {
		n++
	}
	return n
}

func macValue(mac string) uint64 {
	hw, _ := net.ParseMAC(mac)
	var v uint64
	for _, b := range hw {
		v = v<<8 | uint64(b)
	}
	return v
}

func macDistance(from, to string) uint64 {
	f, t := macValue(from), macValue(to)
	if t < f {
		return 0
	}
	return t - f
}

// cloneMAC is the MAC of clone k (1-based) counting up from from.
func cloneMAC(from string, k int) string {
	v := macValue(from) + uint64(k-1)
	hw := make(net.HardwareAddr, 6)
	for i := 5; i >= 0; i-- {
		hw[i] = byte(v)
		v >>= 8
	}
	return strings.ToLower(hw.String())
}

// cloneScript is one clone_setup or clone_run script with its field,
// relative to the machine (scaling.clone_setup[0].script).
type cloneScript struct {
	field, script string
	clones        []int
}

// cloneScriptFields lists clone_setup then clone_run, in YAML order.
func cloneScriptFields(s *Scaling) []cloneScript {
	var out []cloneScript
	for _, f := range []struct {
		name string
		list []CloneScript
	}{{"clone_setup", s.CloneSetup}, {"clone_run", s.CloneRun}} {
		for j, e := range f.list {
			out = append(out, cloneScript{fmt.Sprintf("scaling.%s[%d].script", f.name, j), e.Script, e.Clones})
		}
	}
	return out
}

// cloneScripts are the resolved clone_setup and clone_run scripts of clone
// k (1-based; 0 is no clone) of machine mp.
func cloneScripts(m *Machine, mp string, k int, files map[string]string) []string {
	if m.Scaling == nil || k == 0 {
		return nil
	}
	var out []string
	for _, f := range cloneScriptFields(m.Scaling) {
		if f.script == "" || !slices.Contains(f.clones, k-1) {
			continue
		}
		if real, ok := files[mp+"."+f.field]; ok {
			out = append(out, real)
		} else {
			out = append(out, f.script)
		}
	}
	return out
}
