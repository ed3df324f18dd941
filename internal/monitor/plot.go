package monitor

import (
	"fmt"
	"image/color"
	"io"
	"runtime"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/testbedos/testbedos/internal/api"
)

// Plots are small (320x120 px) SVGs of the last hour for the GUI's <img>
// tags: both lines in percent, x in minutes before now; the title gives the
// latest values in their own units.

// plotW and plotH are 320x120 px at 96 px per inch.
const (
	plotW = 240 * vg.Length(1)
	plotH = 90 * vg.Length(1)
)

var (
	cpuColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	memColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// HostSVG draws the host's CPU (percent of all CPUs) and memory (percent
// of the total) into w.
func HostSVG(w io.Writer, s api.HostSeries, now time.Time) error {
	cpus := float64(runtime.NumCPU())
	var cpu, mem plotter.XYs
	for i, x := range s.Samples {
		if x.MemoryTotalBytes > 0 {
			mem = append(mem, plotter.XY{X: minutesBefore(x.Time, now), Y: 100 * float64(x.MemoryBytes) / float64(x.MemoryTotalBytes)})
		}
		if i > 0 {
			if r, ok := rate(s.Samples[i-1].Time, x.Time, s.Samples[i-1].CPUSeconds, x.CPUSeconds); ok {
				cpu = append(cpu, plotter.XY{X: minutesBefore(x.Time, now), Y: 100 * r / cpus})
			}
		}
	}
	title := "host: no samples yet"
	if n := len(s.Samples); n > 0 {
		last := s.Samples[n-1]
		title = fmt.Sprintf("host  cpu %s  mem %s of %s", lastPct(cpu), bytesText(last.MemoryBytes), bytesText(last.MemoryTotalBytes))
	}
	return draw2(w, title, "cpu %", cpu, "mem %", mem)
}

// GuestSVG draws a guest's CPU (percent of one CPU) and memory (percent of
// the host's memory, memTotal) into w.
func GuestSVG(w io.Writer, s api.GuestSeries, memTotal uint64, now time.Time) error {
	var cpu, mem plotter.XYs
	for i, x := range s.Samples {
		if !s.Stats {
			break // no numbers: no lines
		}
		if memTotal > 0 {
			mem = append(mem, plotter.XY{X: minutesBefore(x.Time, now), Y: 100 * float64(x.MemoryBytes) / float64(memTotal)})
		}
		if i > 0 {
			if r, ok := rate(s.Samples[i-1].Time, x.Time, s.Samples[i-1].CPUSeconds, x.CPUSeconds); ok {
				cpu = append(cpu, plotter.XY{X: minutesBefore(x.Time, now), Y: 100 * r})
			}
		}
	}
	title := "no samples: the guest is not up on this host"
	if n := len(s.Samples); n > 0 {
		last := s.Samples[n-1]
		cpuText, memText := lastPct(cpu), bytesText(last.MemoryBytes)
		if !s.Stats {
			cpuText, memText = "n/a", "n/a"
		}
		title = fmt.Sprintf("cpu %s  mem %s  rx %s  tx %s", cpuText, memText, bytesText(last.RxBytes), bytesText(last.TxBytes))
	}
	return draw2(w, title, "cpu %", cpu, "mem %", mem)
}

// legendW is the strip right of the data area that holds the legend: a
// legend drawn inside the data area has line samples that read as data (a
// red "mem %" swatch near 100 % above a memory line at 5 %).
const legendW = 42 * vg.Length(1)

func draw2(w io.Writer, title, n1 string, l1 plotter.XYs, n2 string, l2 plotter.XYs) error {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(7)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Tick.Label.Font.Size = vg.Points(6)
		a.Label.TextStyle.Font.Size = vg.Points(6)
	}
	p.X.Label.Text = "minutes ago"
	p.X.Min, p.X.Max = -60, 0
	p.Y.Min, p.Y.Max = 0, 100
	legend := plot.NewLegend()
	legend.Top = true
	legend.ThumbnailWidth = vg.Points(10)
	legend.TextStyle.Font.Size = vg.Points(6)
	p.Add(plotter.NewGrid())
	for _, l := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{{n1, l1, cpuColor}, {n2, l2, memColor}} {
		style := draw.LineStyle{Color: l.c, Width: vg.Points(1)}
		legend.Add(l.name, &plotter.Line{LineStyle: style})
		if len(l.xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(l.xys)
		if err != nil {
			return fmt.Errorf("plot %s: %w", l.name, err)
		}
		line.LineStyle = style
		p.Add(line)
	}
	c := vgsvg.New(plotW, plotH)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	top := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
	legend.Draw(draw.Crop(dc, plotW-legendW+vg.Points(4), 0, 0, -top))
	_, err := c.WriteTo(w)
	return err
}

func minutesBefore(t, now time.Time) float64 { return -now.Sub(t).Minutes() }

// rate is the growth per second of a counter between two samples; a
// counter that went down (a guest made again) has none.
func rate(t0, t1 time.Time, v0, v1 float64) (float64, bool) {
	dt := t1.Sub(t0).Seconds()
	if dt <= 0 || v1 < v0 {
		return 0, false
	}
	return (v1 - v0) / dt, true
}

func lastPct(xys plotter.XYs) string {
	if len(xys) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", xys[len(xys)-1].Y)
}

func bytesText(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
