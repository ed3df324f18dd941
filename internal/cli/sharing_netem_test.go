package cli

import (
	"slices"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// TestNetemCommands: the impairments an import carries come back as the
// netem commands that set them again, flags in netem's own spelling.
func TestNetemCommands(t *testing.T) {
	got := netemCommands("lab", map[string]map[string]api.Impairment{
		"web": {"eth0": {Up: true, DelayMS: 20, JitterMS: 5, LossPct: 1.5, RateKbit: 100, CorruptPct: 2}},
		"db":  {"eth1": {Up: false}},
	})
	want := []string{
		"kvm-compose -p lab netem db eth1 --down",
		"kvm-compose -p lab netem web eth0 --delay 20ms --jitter 5ms --loss 1.5% --rate 100kbit --corrupt 2%",
	}
	if !slices.Equal(got, want) {
		t.Errorf("netemCommands = %q, want %q", got, want)
	}
}
