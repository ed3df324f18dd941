package topology

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// TimelineSpec is the file's timeline: timed changes of impairments, links
// and power, run by the action timeline. It is written either as the list
// of changes or as a mapping with the list under changes, a repeat count
// and the period of one round.
type TimelineSpec struct {
	// Repeat runs the list this many times (0 and 1: once).
	Repeat int `yaml:"repeat"`
	// Period is how far apart rounds start; default the largest at.
	Period  string        `yaml:"period"`
	Changes []TimedChange `yaml:"changes"`
}

// TimedChange is one entry of the timeline. Exactly one of Netem, Link and
// State is given; Netem and Link need Interface.
type TimedChange struct {
	// At is the time from the start of the round: "30s", "1.5s", "500ms",
	// "2m", or a number of seconds.
	At        string `yaml:"at"`
	Guest     string `yaml:"guest"`
	Interface string `yaml:"interface"`
	Netem     *Netem `yaml:"netem"`
	// Link is up or down.
	Link string `yaml:"link"`
	// State is stopped or running.
	State string `yaml:"state"`
}

// MaxTimelineChanges bounds the changes of one run, repeats included.
const MaxTimelineChanges = 100_000

// Timeline is the resolved timeline in the state.
type Timeline struct {
	Repeat   int            `json:"repeat"`
	PeriodMS int64          `json:"period_ms"`
	Changes  []TimelineStep `json:"changes"`
}

// TimelineStep is one resolved change, at AtMS from the start of a round.
type TimelineStep struct {
	AtMS      int64  `json:"at_ms"`
	Guest     string `json:"guest"`
	Interface string `json:"interface,omitempty"`
	Netem     *Netem `json:"netem,omitempty"`
	Link      string `json:"link,omitempty"`
	State     string `json:"state,omitempty"`
	// Line is where the change is written in kvm-compose.yaml.
	Line int `json:"line"`
}

// Rounds is how many times the list runs.
func (t *Timeline) Rounds() int { return max(t.Repeat, 1) }

// Describe says what the step does: "web eth0 link down".
func (s TimelineStep) Describe() string {
	switch {
	case s.Netem != nil:
		return fmt.Sprintf("%s %s netem %s", s.Guest, s.Interface, s.Netem.String())
	case s.Link != "":
		return fmt.Sprintf("%s %s link %s", s.Guest, s.Interface, s.Link)
	default:
		return fmt.Sprintf("%s %s", s.Guest, s.State)
	}
}

// timelineAsList lets timeline: be the list of changes itself.
func timelineAsList(n *yaml.Node, v reflect.Value) *yaml.Node {
	if v.Type() != reflect.TypeOf(TimelineSpec{}) || n.Kind != yaml.SequenceNode {
		return n
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "changes", Line: n.Line}
	return &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Content: []*yaml.Node{key, n}}
}

// ParseOffset reads an at or period: a Go duration ("1m30s", "500ms") or a
// plain number of seconds.
func ParseOffset(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e7 {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time such as 30s, 1.5s, 500ms or 2m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q must not be negative", s)
	}
	return d, nil
}

// resolveTimeline checks the timeline against the resolved guests and
// puts it into the state.
func (c *Config) resolveTimeline(st *State, ps *problems) {
	t := c.Timeline
	if t == nil || (len(t.Changes) == 0 && t.Repeat == 0 && t.Period == "") {
		return
	}
	guests := map[string]*Guest{}
	for i := range st.Guests {
		guests[st.Guests[i].Name] = &st.Guests[i]
	}
	out := &Timeline{Repeat: t.Repeat}
	if t.Repeat < 0 {
		ps.addf("timeline.repeat", "%d must not be negative", t.Repeat)
	}
	if len(t.Changes) == 0 {
		ps.addf("timeline.changes", "must list at least one change")
	}
	if n := len(t.Changes) * max(t.Repeat, 1); n > MaxTimelineChanges {
		ps.addf("timeline.repeat", "makes %d changes; at most %d are allowed", n, MaxTimelineChanges)
	}
	var last time.Duration
	for i, ch := range t.Changes {
		f := fmt.Sprintf("timeline.changes[%d]", i)
		step := TimelineStep{Guest: ch.Guest, Interface: ch.Interface, Netem: ch.Netem, Link: ch.Link, State: ch.State, Line: c.line(f)}
		at, err := ParseOffset(ch.At)
		switch {
		case ch.At == "":
			ps.addf(f+".at", "is required: the time from the start, such as 30s")
		case err != nil:
			ps.addf(f+".at", "%v", err)
		}
		step.AtMS = at.Milliseconds()
		last = max(last, at)
		g := guests[ch.Guest]
		if g == nil {
			ps.addf(f+".guest", "%q is not a guest of this deployment", ch.Guest)
		}
		n := 0
		for _, set := range []bool{ch.Netem != nil, ch.Link != "", ch.State != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			ps.addf(f, "must give exactly one of netem, link and state")
		}
		if ch.Netem != nil || ch.Link != "" {
			switch {
			case ch.Interface == "":
				ps.addf(f+".interface", "is required with netem and link: name the guest's interface, such as eth0")
			case g != nil && !hasInterface(g, ch.Interface):
				ps.addf(f+".interface", "guest %s has no interface %s", ch.Guest, ch.Interface)
			}
		} else if ch.Interface != "" {
			ps.addf(f+".interface", "applies to netem and link only, not to state")
		}
		if ch.Link != "" && ch.Link != "up" && ch.Link != "down" {
			ps.addf(f+".link", "%q: want up or down", ch.Link)
		}
		if ch.State != "" && ch.State != "stopped" && ch.State != "running" {
			ps.addf(f+".state", "%q: want stopped or running", ch.State)
		}
		for field, msg := range ch.Netem.Check() {
			ps.addf(f+".netem."+field, "%s", msg)
		}
		out.Changes = append(out.Changes, step)
	}
	period := last
	if t.Period != "" {
		p, err := ParseOffset(t.Period)
		if err != nil {
			ps.addf("timeline.period", "%v", err)
		} else if p < last {
			ps.addf("timeline.period", "%s is shorter than the last change's at %s: rounds would overlap", p, last)
		}
		period = p
	}
	if t.Repeat > 1 && period <= 0 {
		ps.addf("timeline.period", "must be above 0 to repeat: give a period, or an at above 0")
	}
	out.PeriodMS = period.Milliseconds()
	st.Timeline = out
}

func hasInterface(g *Guest, name string) bool {
	for _, ifc := range g.Interfaces {
		if ifc.Name == name {
			return true
		}
	}
	return false
}
