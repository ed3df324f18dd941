package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// aclDoc is a topology with three guests on sw0 and the acl lines given,
// which start on line 12.
func aclDoc(spelling string, acl ...string) string {
	lines := []string{
		"machines:",   // 1
		"  - name: a", // 2
		"    network: {switch: sw0, ip: 10.0.0.10}", // 3
		"  - name: b", // 4
		"    network: [{switch: sw0, ip: 10.0.0.11}]", // 5
		"  - name: c", // 6
		"    network: [{switch: sw0, ip: 10.0.0.12}]", // 7
		"network:",                       // 8
		"  " + spelling + "switches:",    // 9
		"    sw0: {subnet: 10.0.0.0/24}", // 10
		"  " + spelling + "acl:",         // 11
	}
	if spelling != "" {
		lines[8] = "  ovn:\n    switches:"
		lines[9] = "      sw0: {subnet: 10.0.0.0/24}"
		lines[10] = "    acl:"
	}
	return yamlLines(append(lines, acl...)...)
}

func generateACL(t *testing.T, src string) (*State, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return Generate(Options{Deployment: "acl", ProjectDir: dir})
}

func TestACLResolves(t *testing.T) {
	for _, spelling := range []string{"", "ovn."} {
		t.Run("spelling "+spelling, func(t *testing.T) {
			indent := "    "
			if spelling != "" {
				indent = "      "
			}
			src := aclDoc(spelling,
				indent+"apply_deny_all: true",
				indent+"switches:",
				indent+"  sw0:",
				indent+"    - {direction: to-lport, priority: 100, match: \"ip4.src == '10.0.0.10' && icmp4\", action: drop}",
				indent+"    - {direction: from-lport, priority: 0, match: 'inport == \"b\" || inport == \"c-eth0\"', action: allow-related}",
			)
			st, err := generateACL(t, src)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if st.ACL == nil || !st.ACL.DenyAll || len(st.ACL.Switches["sw0"]) != 2 {
				t.Fatalf("ACL = %+v", st.ACL)
			}
			if r := st.ACL.Switches["sw0"][1]; r.Priority != 0 || r.Action != "allow-related" || r.Direction != ACLFromLport {
				t.Errorf("rule 1 = %+v", r)
			}
			ports := ACLPorts(st, "sw0")
			if ports["a"] != st.Guests[0].Interfaces[0].HostName || ports["c-eth0"] != st.Guests[2].Interfaces[0].HostName || len(ports) != 6 {
				t.Errorf("ports = %v", ports)
			}
			// network as one mapping is the original's spelling of a list of one.
			if len(st.Guests[0].Interfaces) != 1 || st.Guests[0].Interfaces[0].Address != "10.0.0.10/24" {
				t.Errorf("guest a = %+v", st.Guests[0])
			}
		})
	}
}

func TestACLProblems(t *testing.T) {
	rule := func(s string) []string {
		return []string{"    switches:", "      sw0:", "        - " + s}
	}
	tests := []struct {
		name  string
		lines []string
		line  int
		field string
		msg   string
	}{
		{"unknown field in match", rule(`{direction: to-lport, priority: 1, match: "ip4.sorc == 10.0.0.1", action: drop}`),
			14, "network.acl.switches.sw0[0].match", `unknown field "ip4.sorc"`},
		{"bad token", rule(`{direction: to-lport, priority: 1, match: "ip4 & icmp4", action: drop}`),
			14, "network.acl.switches.sw0[0].match", `(column 5, token "&")`},
		{"bad address", rule(`{direction: to-lport, priority: 1, match: "ip4.src == 10.0.0.300", action: drop}`),
			14, "network.acl.switches.sw0[0].match", `token "10.0.0.300"`},
		{"unknown port", rule(`{direction: to-lport, priority: 1, match: 'outport == "zz"', action: drop}`),
			14, "network.acl.switches.sw0[0].match", `outport "zz" is not a port of switch sw0`},
		{"outport from-lport", rule(`{direction: from-lport, priority: 1, match: 'outport == "a"', action: drop}`),
			14, "network.acl.switches.sw0[0].match", "outport is not known yet"},
		{"missing match", rule(`{direction: to-lport, priority: 1, action: drop}`),
			14, "network.acl.switches.sw0[0].match", "is required"},
		{"bad direction", rule(`{direction: both, priority: 1, match: ip4, action: drop}`),
			14, "network.acl.switches.sw0[0].direction", `"both" is not a direction`},
		{"bad action", rule(`{direction: to-lport, priority: 1, match: ip4, action: deny}`),
			14, "network.acl.switches.sw0[0].action", `"deny" is not an ACL action`},
		{"missing priority", rule(`{direction: to-lport, match: ip4, action: drop}`),
			14, "network.acl.switches.sw0[0].priority", "is required"},
		{"priority too high", rule(`{direction: to-lport, priority: 32768, match: ip4, action: drop}`),
			14, "network.acl.switches.sw0[0].priority", "out of range"},
		{"unknown switch", []string{"    switches:", "      sw9: []"},
			13, "network.acl.switches.sw9", "is not a switch"},
		{"unknown acl field", []string{"    deny_all: true"},
			12, "network.acl.deny_all", "is not a known field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := generateACL(t, aclDoc("", tt.lines...))
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Generate = %v, want a ValidationError", err)
			}
			if len(verr.Problems) != 1 {
				t.Fatalf("problems = %v, want one", verr.Problems)
			}
			p := verr.Problems[0]
			if p.Line != tt.line || p.Field != tt.field || !strings.Contains(p.Message, tt.msg) || p.File != DefaultFile {
				t.Errorf("problem = %s; want line %d, field %s, message with %q", p, tt.line, tt.field, tt.msg)
			}
		})
	}
}

func TestAndroidRefused(t *testing.T) {
	ps := parseProblems(t, doc(
		"machines:",
		"  - name: a",
		"  - name: b",
		"  - name: phone",
		"    android: {}",
	))
	if len(ps) != 1 || ps[0].Field != "machines[2].android" || ps[0].Line != 5 ||
		ps[0].Message != "android guests are not supported (kinds: netns, libvirt, docker)" {
		t.Fatalf("problems = %v", ps)
	}
}
