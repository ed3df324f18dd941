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

// Plots are SVGs of a time window (5 minutes to the hour kept) for the
// GUI's <img> tags, sized to be read: CPU and memory in percent, a guest's
// network in bytes per second below them; x in minutes before now; the
// title gives the latest values in their own units.

// plotW and plotH are 640x240 px at 96 px per inch; a guest's plot has a
// second panel of the same height for its network.
const (
	plotW = 480 * vg.Length(1)
	plotH = 180 * vg.Length(1)
)

// MaxWindow is the longest window a plot shows: the hour kept in memory.
const MaxWindow = time.Hour

// netColors colour the interfaces of a guest's network panel; rx is a
// solid line, tx dashed.
var netColors = []color.Color{
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
}

// rates are the receive and send rates of each interface, in KiB/s.
type rates struct {
	names  []string
	rx, tx map[string]plotter.XYs
}

func newRates() *rates { return &rates{rx: map[string]plotter.XYs{}, tx: map[string]plotter.XYs{}} }

// add the rates between two samples; a sample without per-interface
// counters (an older one) counts as one interface, "all".
func (n *rates) add(prev, cur api.GuestSample, x float64) {
	ifaces := func(s api.GuestSample) []api.InterfaceSample {
		if len(s.Interfaces) == 0 {
			return []api.InterfaceSample{{Name: "all", RxBytes: s.RxBytes, TxBytes: s.TxBytes}}
		}
		return s.Interfaces
	}
	before := map[string]api.InterfaceSample{}
	for _, i := range ifaces(prev) {
		before[i.Name] = i
	}
	for _, i := range ifaces(cur) {
		p, ok := before[i.Name]
		if !ok {
			continue
		}
		if _, seen := n.rx[i.Name]; !seen {
			n.names = append(n.names, i.Name)
		}
		if r, ok := rate(prev.Time, cur.Time, float64(p.RxBytes), float64(i.RxBytes)); ok {
			n.rx[i.Name] = append(n.rx[i.Name], plotter.XY{X: x, Y: r / 1024})
		}
		if r, ok := rate(prev.Time, cur.Time, float64(p.TxBytes), float64(i.TxBytes)); ok {
			n.tx[i.Name] = append(n.tx[i.Name], plotter.XY{X: x, Y: r / 1024})
		}
	}
}

// draw adds a line for each interface's rx and tx to p.
func (n *rates) draw(p *plot.Plot) error {
	for k, name := range n.names {
		c := netColors[k%len(netColors)]
		for _, l := range []struct {
			label string
			xys   plotter.XYs
			dash  bool
		}{{name + " rx", n.rx[name], false}, {name + " tx", n.tx[name], true}} {
			if len(l.xys) == 0 {
				continue
			}
			line, err := plotter.NewLine(l.xys)
			if err != nil {
				return fmt.Errorf("plot %s: %w", l.label, err)
			}
			line.Color = c
			line.Width = vg.Points(1.5)
			if l.dash {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			}
			p.Add(line)
			p.Legend.Add(l.label, line)
		}
	}
	return nil
}

func window(w time.Duration) time.Duration {
	if w <= 0 || w > MaxWindow {
		return MaxWindow
	}
	return w
}

var (
	cpuColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	memColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// HostSVG draws the host's CPU (percent of all CPUs) and memory (percent
// of the total) into w.
func HostSVG(w io.Writer, s api.HostSeries, now time.Time, win time.Duration) error {
	win = window(win)
	cpus := float64(runtime.NumCPU())
	var cpu, mem plotter.XYs
	for i, x := range s.Samples {
		if now.Sub(x.Time) > win {
			continue
		}
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
	c := vgsvg.New(plotW, plotH)
	dc := draw.New(c)
	p, err := percentPlot(title, cpu, mem, win)
	if err != nil {
		return err
	}
	drawBeside(p, dc)
	_, err = c.WriteTo(w)
	return err
}

// GuestSVG draws a guest's CPU (percent of one CPU) and memory (percent of
// the host's memory, memTotal) into w.
func GuestSVG(w io.Writer, s api.GuestSeries, memTotal uint64, now time.Time, win time.Duration) error {
	win = window(win)
	var cpu, mem plotter.XYs
	net := newRates()
	for i, x := range s.Samples {
		if now.Sub(x.Time) > win {
			continue
		}
		if memTotal > 0 {
			mem = append(mem, plotter.XY{X: minutesBefore(x.Time, now), Y: 100 * float64(x.MemoryBytes) / float64(memTotal)})
		}
		if i > 0 {
			if r, ok := rate(s.Samples[i-1].Time, x.Time, s.Samples[i-1].CPUSeconds, x.CPUSeconds); ok {
				cpu = append(cpu, plotter.XY{X: minutesBefore(x.Time, now), Y: 100 * r})
			}
			net.add(s.Samples[i-1], x, minutesBefore(x.Time, now))
		}
	}
	if !s.Stats {
		cpu, mem = nil, nil // no numbers: no lines
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
	top, err := percentPlot(title, cpu, mem, win)
	if err != nil {
		return err
	}
	bottom := newPlot("network per interface, KiB/s (rx: received by the guest)", win)
	if err := net.draw(bottom); err != nil {
		return err
	}
	bottom.Y.Min, bottom.Y.Max = 0, max(bottom.Y.Max, 1)
	c := vgsvg.New(plotW, 2*plotH)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(4)}
	cs := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, draw.New(c))
	drawBeside(top, cs[0][0])
	drawBeside(bottom, cs[1][0])
	_, err = c.WriteTo(w)
	return err
}

// legendW is the strip right of the data area that holds a plot's legend:
// a legend drawn inside the data area has line samples that read as data
// (a red "mem %" swatch near 100 % above a memory line at 5 %).
const legendW = 64 * vg.Length(1)

// drawBeside draws p into c with its legend in a strip of its own, right
// of the data area.
func drawBeside(p *plot.Plot, c draw.Canvas) {
	legend := p.Legend
	p.Legend = plot.NewLegend()
	p.Draw(draw.Crop(c, 0, -legendW, 0, 0))
	p.Legend = legend
	top := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
	legend.Top, legend.Left = true, true
	legend.Draw(draw.Crop(c, c.Max.X-c.Min.X-legendW+vg.Points(4), 0, 0, -top))
}

// newPlot is an empty plot of the window, with fonts a person reads.
func newPlot(title string, win time.Duration) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(11)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Tick.Label.Font.Size = vg.Points(9)
		a.Label.TextStyle.Font.Size = vg.Points(9)
	}
	p.X.Label.Text = "minutes ago"
	p.X.Min, p.X.Max = -win.Minutes(), 0
	p.Legend.Top = true
	p.Legend.Left = true // the newest samples are on the right
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	return p
}

// percentPlot is CPU and memory in percent.
func percentPlot(title string, cpu, mem plotter.XYs, win time.Duration) (*plot.Plot, error) {
	p := newPlot(title, win)
	err := addLines(p, "cpu %", cpu, cpuColor, "mem %", mem, memColor)
	// Sampling jitter can put a rate a little over 100 %: the axis stays.
	p.Y.Min, p.Y.Max = 0, 100
	return p, err
}

func addLines(p *plot.Plot, n1 string, l1 plotter.XYs, c1 color.Color, n2 string, l2 plotter.XYs, c2 color.Color) error {
	for _, l := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{{n1, l1, c1}, {n2, l2, c2}} {
		if len(l.xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(l.xys)
		if err != nil {
			return fmt.Errorf("plot %s: %w", l.name, err)
		}
		line.Color = l.c
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(l.name, line)
	}
	return nil
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
