package ovn

import (
	"context"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/net/nettest"
)

// A guest whose address OVN assigns resolves by name on every switch of
// its deployment, once OVN has assigned it: the switch written before the
// dynamic guest's gets the name too.
func TestDynamicGuestInDNS(t *testing.T) {
	n, _ := openTest(t)
	ctx := context.Background()
	p := nettest.Prefix(t)
	static := map[string]string{"web": "10.9.0.10"}
	dynamic := map[string]string{p + "db": "db"}
	a := SwitchSpec{Name: p + "a", Deployment: p, Subnet: "10.9.0.0/24", DNS: static, DynamicDNS: dynamic,
		Ports: []PortSpec{{Name: p + "web", Addresses: []string{"02:00:00:00:00:0a 10.9.0.10"}}}}
	b := SwitchSpec{Name: p + "b", Deployment: p, Subnet: "10.9.1.0/24", ExcludeIPs: "10.9.1.1..10.9.1.9", DNS: static, DynamicDNS: dynamic,
		Ports: []PortSpec{{Name: p + "db", Addresses: []string{"02:00:00:00:00:0b dynamic"}}}}
	for _, sw := range []SwitchSpec{a, b} {
		if err := n.PutSwitch(ctx, sw); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.DeleteSwitch(context.Background(), sw.Name) })
	}
	ip := n.dynamicIP(p + "db")
	if !strings.HasPrefix(ip, "10.9.1.") || ip == "10.9.1.1" {
		t.Fatalf("dynamic address %q", ip)
	}
	for _, ls := range []string{a.Name, b.Name} {
		if got := n.Records(ls, "db"); got != ip {
			t.Errorf("db on %s: %q, want %s", ls, got, ip)
		}
		if got := n.Records(ls, "web"); got != "10.9.0.10" {
			t.Errorf("web on %s: %q", ls, got)
		}
	}
}
