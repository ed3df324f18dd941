package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNetemProblems(t *testing.T) {
	tests := []struct {
		name, netem, field, msg string
	}{
		{"negative delay", "{delay_ms: -1}", "delay_ms", "must not be negative"},
		{"loss over 100", "{loss_pct: 101}", "loss_pct", "between 0 and 100"},
		{"corrupt negative", "{corrupt_pct: -0.5}", "corrupt_pct", "between 0 and 100"},
		{"jitter without delay", "{jitter_ms: 5}", "jitter_ms", "needs a delay_ms"},
		{"negative rate", "{rate_kbit: -10}", "rate_kbit", "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parseProblems(t, doc(
				"machines:",
				"  - name: web",
				"    network:",
				"      - switch: sw0",
				"        ip: 10.0.0.5",
				"        netem: "+tt.netem,
			))
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(ps), ps)
			}
			p := ps[0]
			if p.Field != "machines[0].network[0].netem."+tt.field || !strings.Contains(p.Message, tt.msg) || p.Line != 6 {
				t.Errorf("got %d [%s] %s; want line 6 field ...netem.%s, message with %q", p.Line, p.Field, p.Message, tt.field, tt.msg)
			}
		})
	}
}

func TestNetemResolved(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte(doc(
		"machines:",
		"  - name: web",
		"    network:",
		"      - {switch: sw0, ip: 10.0.0.5, netem: {delay_ms: 50, jitter_ms: 5, loss_pct: 1.5, rate_kbit: 1000, corrupt_pct: 0.1}}",
		"      - {switch: sw0, ip: 10.0.0.6}",
	)), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Generate(Options{Deployment: "dep", ProjectDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := st.Guests[0].Interfaces
	want := Netem{DelayMS: 50, JitterMS: 5, LossPct: 1.5, RateKbit: 1000, CorruptPct: 0.1}
	if got[0].Netem == nil || *got[0].Netem != want {
		t.Errorf("eth0 netem = %+v, want %+v", got[0].Netem, want)
	}
	if got[1].Netem != nil {
		t.Errorf("eth1 netem = %+v, want none", got[1].Netem)
	}
}
