package benchbase

import (
	"strings"
	"testing"
)

func TestPlanScripts(t *testing.T) {
	p := Plan{Prefix: "tq123456", Bridge: "tq123456br", N: 3}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	host := p.HostScript()
	for _, want := range []string{
		"netns add tq123456n0\n",
		"link add tq123456h2 type veth peer name eth0 address 02:7b:00:00:00:02 netns tq123456n2\n",
		"link set tq123456h1 master tq123456br up\n",
	} {
		if !strings.Contains(host, want) {
			t.Errorf("host script lacks %q:\n%s", want, host)
		}
	}
	if got, want := strings.Count(host, "\n"), 3*p.N; got != want {
		t.Errorf("host script has %d lines, want %d", got, want)
	}
	if got := p.GuestScript(0); got != "link set lo up\naddr add 10.123.0.1/16 dev eth0\nlink set eth0 up\n" {
		t.Errorf("guest script %q", got)
	}
	if got := p.DownScript(); got != "netns del tq123456n0\nnetns del tq123456n1\nnetns del tq123456n2\n" {
		t.Errorf("down script %q", got)
	}
}

func TestPlanBridges(t *testing.T) {
	p := Plan{Prefix: "tq123456", Bridges: []string{"b0", "b1", "b2", "b3"}, N: 8}
	host := p.HostScript()
	for _, want := range []string{"link set tq123456h0 master b0 up\n", "link set tq123456h5 master b1 up\n", "link set tq123456h7 master b3 up\n"} {
		if !strings.Contains(host, want) {
			t.Errorf("host script lacks %q:\n%s", want, host)
		}
	}
	if got := p.HostVeths(); len(got) != 8 || got[7] != "tq123456h7" {
		t.Errorf("HostVeths() = %v", got)
	}
}

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name string
		plan Plan
		ok   bool
	}{
		{"200 guests", Plan{Prefix: "tq123456", Bridge: "tq123456br", N: 200}, true},
		{"names too long", Plan{Prefix: "averylongprefix", Bridge: "br", N: 200}, false},
		{"no prefix", Plan{Bridge: "br", N: 1}, false},
		{"bridge too long", Plan{Prefix: "tq", Bridge: "sixteen-bytes-xx", N: 1}, false},
		{"1000 guests on 4 bridges", Plan{Prefix: "tq123456", Bridges: []string{"b0", "b1", "b2", "b3"}, N: 1000}, true},
		{"one of the bridges unnamed", Plan{Prefix: "tq123456", Bridges: []string{"b0", ""}, N: 10}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.plan.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
