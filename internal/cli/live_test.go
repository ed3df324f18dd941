package cli

import (
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		bad  bool
	}{
		{"10mbit", 10000, false}, {"512kbit", 512, false}, {"1gbit", 1000000, false},
		{"64000bit", 64, false}, {"2.5Mbit", 2500, false}, {"300", 300, false}, {"0", 0, false},
		{"fast", 0, true}, {"-1mbit", 0, true}, {"", 0, true},
	} {
		got, err := parseRate(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d (error: %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestDescribeImpairment(t *testing.T) {
	got := describeImpairment(api.InterfaceImpairment{Guest: "web", Interface: "eth0", HostLink: "tb-x",
		Impairment: api.Impairment{Up: false, DelayMS: 20, JitterMS: 5, LossPct: 1.5, RateKbit: 10000}, Source: "runtime"})
	want := "web eth0 (host link tb-x): DOWN, delay 20ms jitter 5ms loss 1.5% rate 10000kbit (set at run time)"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = describeImpairment(api.InterfaceImpairment{Guest: "web", Interface: "eth0", HostLink: "tb-x", Impairment: api.Impairment{Up: true}, Source: "yaml"})
	if want := "web eth0 (host link tb-x): up, no impairment (from kvm-compose.yaml)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
