package topology

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/testbedos/testbedos/internal/api"
)

// FuzzParse feeds arbitrary bytes to Parse, and what it accepts to
// resolution: neither may panic, every problem must point somewhere and say
// something, and an accepted topology must resolve to usable names.
func FuzzParse(f *testing.F) {
	quickstart, err := os.ReadFile("testdata/quickstart.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(quickstart)
	for _, tc := range problemCases {
		f.Add([]byte(tc.src))
	}
	for _, s := range []string{
		"",
		"[]",
		"machines: &a [*a]",
		"machines:\n  - &m\n    name: a\n    <<: *m\n",
		"machines: [{name: a, scaling: {count: 4096}, network: [{switch: s, ip: 10.0.0.1}]}]\nnetwork: {switches: {s: {subnet: 10.0.0.0/8}}}",
		"machines: [{name: a, network: [{switch: s, ip: 'fd00::1'}]}]\nnetwork: {ovn: {switches: {s: {subnet: 'fd00::/64'}}}}",
		"machines: [{name: a, libvirt: {cpus: 0x10, memory_mb: 1_024, libvirt_type: {kernel: {kernel: k}}}}]",
		"? [a]\n: b\n",
		"machines: [{name: !!binary YQ==}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Generate resolves a topology even when it has problems (to report
		// every one in one pass): that must not fail on any input.
		if pc, _ := parse("kvm-compose.yaml", data); pc != nil {
			pc.resolve(resolveEnv{deployment: "fuzz", hosts: []Host{{Name: "main", Main: true}}})
		}
		c, err := Parse("kvm-compose.yaml", data)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error %T is not a *ValidationError: %v", err, err)
			}
			if len(verr.Problems) == 0 {
				t.Fatal("ValidationError without problems")
			}
			// Other encodings (UTF-16) are converted by the parser, so lines
			// can be counted here for UTF-8 only.
			lines := lineCount(data)
			if !utf8.Valid(data) {
				lines = math.MaxInt
			}
			for _, p := range verr.Problems {
				if p.Line < 0 || p.Line > lines || (p.Field == "" && p.Message == "") || p.File != "kvm-compose.yaml" {
					t.Fatalf("bad problem %+v (document has %d lines)", p, lines)
				}
			}
			return
		}
		if len(c.Machines) == 0 {
			t.Fatal("accepted a topology without machines")
		}
		st, ps := c.resolve(resolveEnv{deployment: "fuzz", hosts: []Host{{Name: "main", Main: true}, {Name: "c1"}}})
		if len(ps) > 0 {
			// Only generated-name collisions may be found this late.
			for _, p := range ps {
				if p.Line < 0 || p.Field == "" {
					t.Fatalf("bad resolution problem %+v", p)
				}
			}
			return
		}
		for _, g := range st.Guests {
			if !api.ValidName(g.Name) || g.Host == "" {
				t.Fatalf("guest %+v", g)
			}
			for _, ifc := range g.Interfaces {
				if len(ifc.HostName) > 15 || len(ifc.Bridge) > 15 {
					t.Fatalf("kernel name too long in %+v", ifc)
				}
				if _, err := netip.ParsePrefix(ifc.Address); err != nil {
					t.Fatalf("address %q of %s: %v", ifc.Address, g.Name, err)
				}
				if hw, err := net.ParseMAC(ifc.MAC); err != nil || hw[0]&1 != 0 {
					t.Fatalf("MAC %q of %s", ifc.MAC, g.Name)
				}
			}
		}
	})
}
