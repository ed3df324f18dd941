package labgen

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

// The section is YAML whose extra routes land on their router, after the
// routes every lab has.
func TestChainedRoutersYAML(t *testing.T) {
	c := ChainedRouters{Net: "10.9", MAC: "ab", PublicIP: "172.16.1.9", PublicPort: "pub",
		EdgeRoutes: []string{`{prefix: "10.9.0.0/24", nexthop: "10.9.0.1"}`}, InnerRoutes: []string{`{prefix: "10.7.0.0/24", nexthop: "10.9.9.9"}`}}
	var doc struct {
		Network struct {
			OVN struct {
				Routers map[string]struct {
					StaticRoutes []struct{ Prefix, Nexthop string } `yaml:"static_routes"`
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(c.YAML()), &doc); err != nil {
		t.Fatalf("%v\n%s", err, c.YAML())
	}
	for router, want := range map[string][]string{"edge": {"0.0.0.0/0", "10.9.2.0/24", "10.9.0.0/24"}, "inner": {"0.0.0.0/0", "10.7.0.0/24"}} {
		got := doc.Network.OVN.Routers[router].StaticRoutes
		if len(got) != len(want) {
			t.Fatalf("%s: routes %+v, want %v", router, got, want)
		}
		for i, p := range want {
			if got[i].Prefix != p {
				t.Errorf("%s: route %d is %q, want %q", router, i, got[i].Prefix, p)
			}
		}
	}
}
