package topology

import (
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/api"
)

// Bounds of a link impairment.
const (
	// MaxNetemDelayMS is the largest delay or jitter: one minute.
	MaxNetemDelayMS = 60_000
	// MaxNetemRateKbit is the largest rate limit: 100 Gbit/s.
	MaxNetemRateKbit = 100_000_000
)

// Check lists what is wrong with the impairment, one message per field
// (keyed by its YAML name); nil means it is valid.
func (n *Netem) Check() map[string]string {
	if n == nil {
		return nil
	}
	out := map[string]string{}
	switch {
	case n.DelayMS < 0:
		out["delay_ms"] = fmt.Sprintf("%d must not be negative", n.DelayMS)
	case n.DelayMS > MaxNetemDelayMS:
		out["delay_ms"] = fmt.Sprintf("%d is more than the %d ms allowed", n.DelayMS, MaxNetemDelayMS)
	}
	switch {
	case n.JitterMS < 0:
		out["jitter_ms"] = fmt.Sprintf("%d must not be negative", n.JitterMS)
	case n.JitterMS > MaxNetemDelayMS:
		out["jitter_ms"] = fmt.Sprintf("%d is more than the %d ms allowed", n.JitterMS, MaxNetemDelayMS)
	case n.JitterMS > 0 && n.DelayMS <= 0:
		out["jitter_ms"] = "needs a delay_ms to vary around: give delay_ms too"
	}
	pct := func(field string, v float64) {
		if v < 0 || v > 100 || v != v {
			out[field] = fmt.Sprintf("%g is not a percentage between 0 and 100", v)
		}
	}
	pct("loss_pct", n.LossPct)
	pct("corrupt_pct", n.CorruptPct)
	switch {
	case n.RateKbit < 0:
		out["rate_kbit"] = fmt.Sprintf("%d must not be negative", n.RateKbit)
	case n.RateKbit > MaxNetemRateKbit:
		out["rate_kbit"] = fmt.Sprintf("%d is more than the %d kbit/s allowed", n.RateKbit, MaxNetemRateKbit)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// NetemOf is the impairment part of a run-time setting (the API's shape,
// which also says whether the link is up).
func NetemOf(imp api.Impairment) *Netem {
	return &Netem{DelayMS: imp.DelayMS, JitterMS: imp.JitterMS, LossPct: imp.LossPct, RateKbit: imp.RateKbit, CorruptPct: imp.CorruptPct}
}

// IsZero reports whether the impairment impairs nothing.
func (n *Netem) IsZero() bool { return n == nil || *n == Netem{} }

// String describes the impairment for logs: "delay 20ms jitter 5ms loss 1%".
func (n *Netem) String() string {
	if n.IsZero() {
		return "none"
	}
	var parts []string
	if n.DelayMS > 0 {
		parts = append(parts, fmt.Sprintf("delay %dms", n.DelayMS))
	}
	if n.JitterMS > 0 {
		parts = append(parts, fmt.Sprintf("jitter %dms", n.JitterMS))
	}
	if n.LossPct > 0 {
		parts = append(parts, fmt.Sprintf("loss %g%%", n.LossPct))
	}
	if n.RateKbit > 0 {
		parts = append(parts, fmt.Sprintf("rate %dkbit", n.RateKbit))
	}
	if n.CorruptPct > 0 {
		parts = append(parts, fmt.Sprintf("corrupt %g%%", n.CorruptPct))
	}
	return strings.Join(parts, " ")
}

// checkNetem adds the problems of a network entry's netem to ps.
func checkNetem(ps *problems, np string, n *Netem) {
	for _, field := range []string{"delay_ms", "jitter_ms", "loss_pct", "rate_kbit", "corrupt_pct"} {
		if msg, bad := n.Check()[field]; bad {
			ps.addf(np+".netem."+field, "%s", msg)
		}
	}
}
