package monitor

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
)

// noStatsHost's driver reports no CPU or memory (as a kind without stats).
type noStatsHost struct{ fakeHost }

type noStatsDriver struct{ guest.Driver }

func (h noStatsHost) Driver(kind string) (guest.Driver, error) {
	d, err := h.fakeHost.Driver(kind)
	if err != nil {
		return nil, err
	}
	return noStatsDriver{d}, nil
}

// TestNoNumberIsNotZero: a guest whose driver gives no CPU or memory
// numbers has null resources (the GUI shows n/a) and a plot saying n/a,
// not 0 and 0 B; its link counters still come through.
func TestNoNumberIsNotZero(t *testing.T) {
	recs := &engine.MemoryRecords{}
	putRecord(t, recs, "d1", "a")
	links := func(string) (uint64, uint64, error) { return 10, 20, nil }
	m := New(Options{Interval: time.Second, Records: recs, Host: noStatsHost{fakeHost{&fakeDriver{}}}, Links: links})
	m.Sample(context.Background())
	r := m.Latest("d1", "a")
	if r == nil || r.RxBytes != 20 || r.CPUSeconds != nil || r.MemoryBytes != nil {
		t.Fatalf("latest = %+v, want link counters and no CPU or memory", r)
	}
	if s := m.Guest("d1", "a"); s.Stats || len(s.Samples) != 1 {
		t.Fatalf("series = %+v, want one sample without stats", s)
	}
	var b bytes.Buffer
	if err := m.GuestSVG(&b, "d1", "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "cpu n/a  mem n/a") {
		t.Errorf("the plot's title does not say n/a:\n%s", b.String())
	}
}

var svgText = regexp.MustCompile(`(?s)<text x="([0-9.]+)"[^>]*>([^<]*)</text>`)

// TestLegendBesideTheData: the legend's line samples are drawn right of the
// data area, not over it, where a red "mem %" swatch near the top read as
// a memory line at 90 % above a caption saying 5 %.
func TestLegendBesideTheData(t *testing.T) {
	now := time.Now()
	var hs []api.HostSample
	for i := range 10 {
		hs = append(hs, api.HostSample{Time: now.Add(time.Duration(i-10) * time.Minute), CPUSeconds: float64(i), MemoryBytes: 1 << 30, MemoryTotalBytes: 20 << 30})
	}
	var b bytes.Buffer
	if err := HostSVG(&b, api.HostSeries{Samples: hs}, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	axisEnd, legend := -1.0, -1.0
	for _, m := range svgText.FindAllStringSubmatch(b.String(), -1) {
		x, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		switch strings.TrimSpace(m[2]) {
		case "0": // the x axis ends at 0 minutes ago (the y axis' 0 is left)
			axisEnd = max(axisEnd, x)
		case "mem %":
			legend = x
		}
	}
	if axisEnd < 0 || legend < 0 {
		t.Fatalf("no x-axis end or legend in the SVG:\n%s", b.String())
	}
	if legend <= axisEnd {
		t.Errorf("the legend (x %.1f) is drawn over the data area, which ends at x %.1f", legend, axisEnd)
	}
}
