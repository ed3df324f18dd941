package gui

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"

	"github.com/testbedos/testbedos/internal/topology"
)

// The topology picture is laid out here, not by Graphviz: a testbed is a
// bipartite graph (guests on switches), so a layered layout says it best —
// switches in a row on top, each switch's guests in a grid below it, hung
// on one bus line per row. It stays readable at hundreds of guests (no
// crossing fan of edges), costs microseconds, and needs no WebAssembly
// runtime in the server. Guests on a second switch get a dashed line to it.

const (
	guestW, guestH = 92, 30
	cellW, cellH   = 102, 50
	switchH        = 34
	margin         = 20
	blockGap       = 36
	// rowsBelow is the gap from a switch's top to its first row of guests.
	rowsBelow = switchH + 40
	// maxWidth is where blocks wrap onto a new shelf, so that the picture
	// grows down rather than into a strip wider than any screen.
	maxWidth = 1300
)

// palette colours hosts; the main host is first.
// White labels on them keep a contrast of 4.5:1 or more.
var palette = []string{"#2f5d8a", "#a34d00", "#2d6b2d", "#7b4d74", "#b22a2c", "#1f6b66", "#6e5a00", "#6b4f3a", "#a8326e", "#555555"}

type hostColor struct{ Name, Color string }

// hostColors gives every host of the state (and every host a guest names)
// its colour, in the state's order.
func hostColors(st *topology.State) []hostColor {
	var out []hostColor
	seen := map[string]bool{}
	add := func(name string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, hostColor{Name: name, Color: palette[len(out)%len(palette)]})
	}
	for _, h := range st.Hosts {
		add(h.Name)
	}
	for _, g := range st.Guests {
		add(g.Host)
	}
	return out
}

type block struct {
	name, label string
	spans       bool
	external    *topology.ExternalSide
	guests      []*topology.Guest
	x, y, w     int
	cols, rows  int
}

// drawTopology renders the state as an inline SVG.
func drawTopology(st *topology.State) template.HTML {
	colors := map[string]string{}
	for _, h := range hostColors(st) {
		colors[h.Name] = h.Color
	}
	blocks := []*block{}
	index := map[string]*block{}
	for _, sw := range st.Switches {
		b := &block{name: sw.Name, label: sw.Name + "  " + sw.Subnet, spans: sw.Spans(), external: sw.External}
		index[sw.Name] = b
		blocks = append(blocks, b)
	}
	var loose *block
	for i := range st.Guests {
		g := &st.Guests[i]
		var b *block
		if len(g.Interfaces) > 0 {
			b = index[g.Interfaces[0].Switch]
		}
		if b == nil {
			if loose == nil {
				loose = &block{label: "no network"}
			}
			b = loose
		}
		b.guests = append(b.guests, g)
	}
	if loose != nil {
		blocks = append(blocks, loose)
	}
	// Routers take a row of their own on top.
	rl := layoutRouters(st.Routers)
	// Widths, then positions: blocks left to right, wrapping onto shelves.
	x, y, shelfH, width := margin, margin+rl.height, 0, max(200, rl.width)
	for _, b := range blocks {
		n := len(b.guests)
		b.cols = int(math.Ceil(math.Sqrt(float64(n) * 2)))
		b.cols = max(1, min(b.cols, 10, n))
		b.rows = (n + b.cols - 1) / b.cols
		b.w = max(b.cols*cellW, 10+7*len(b.label)+20, len(rl.ports[b.name])*portW+20)
		if b.external != nil {
			b.w = max(b.w, 10+6*len(externalText(b.external))+20)
		}
		if x > margin && x+b.w > maxWidth {
			x, y, shelfH = margin, y+shelfH+blockGap, 0
		}
		b.x, b.y = x, y
		x += b.w + blockGap
		shelfH = max(shelfH, rowsBelow+b.rows*cellH)
		width = max(width, b.x+b.w+margin)
	}
	height := y + shelfH + margin
	pos := map[string][2]int{} // guest centre
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="%d" height="%d" viewBox="0 0 %d %d" role="group" aria-label="topology of %s">`,
		width, height, width, height, esc(st.Deployment))
	sb.WriteString(`<style>.topology text{font:12px sans-serif;dominant-baseline:middle}.topology .g text,.topology .router text{fill:#fff}.topology .bus{stroke:#777;stroke-width:1.5}.topology .extra{stroke:#999;stroke-dasharray:4 3;fill:none}.topology .rlink{stroke-width:1.5;fill:none}.topology text.gw,.topology text.ext{font-size:10px}.topology text.ext{fill:#2a7a2a}</style>`)
	drawRouterLinks(&sb, rl, index)
	for _, b := range blocks {
		topY, firstRowY, rows := b.y, b.y+rowsBelow, b.rows
		// The switch.
		if b.name != "" {
			dash := ""
			if b.spans {
				dash = ` stroke-dasharray="6 3"`
			}
			if b.external == nil {
				fmt.Fprintf(&sb, `<g class="switch" id="topo-switch-%s"><title>switch %s</title><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#eee" stroke="#555"%s/><text x="%d" y="%d">%s</text></g>`,
					esc(b.name), esc(b.label), b.x, topY, b.w, switchH, dash, b.x+10, topY+switchH/2, esc(b.label))
			} else {
				ext := esc(externalText(b.external))
				fmt.Fprintf(&sb, `<g class="switch external" id="topo-switch-%s"><title>switch %s&#10;%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#eef7ee" stroke="#2a7a2a" stroke-width="2"%s/><text x="%d" y="%d">%s</text><text class="ext" id="topo-external-%s" x="%d" y="%d">%s</text></g>`,
					esc(b.name), esc(b.label), ext, b.x, topY, b.w, switchH, dash, b.x+10, topY+11, esc(b.label), esc(b.name), b.x+10, topY+25, ext)
			}
		} else {
			fmt.Fprintf(&sb, `<text x="%d" y="%d">%s</text>`, b.x, topY+switchH/2, esc(b.label))
		}
		trunkX := b.x + 4
		if b.name != "" && rows > 0 {
			lastBus := firstRowY + (rows-1)*cellH - 8
			fmt.Fprintf(&sb, `<line class="bus" x1="%d" y1="%d" x2="%d" y2="%d"/>`, trunkX, topY+switchH, trunkX, lastBus)
		}
		for r := 0; r < rows; r++ {
			busY := firstRowY + r*cellH - 8
			n := min(b.cols, len(b.guests)-r*b.cols)
			if b.name != "" {
				fmt.Fprintf(&sb, `<line class="bus" x1="%d" y1="%d" x2="%d" y2="%d"/>`, trunkX, busY, b.x+(n-1)*cellW+cellW/2, busY)
			}
			for c := 0; c < n; c++ {
				g := b.guests[r*b.cols+c]
				gx, gy := b.x+c*cellW+(cellW-guestW)/2, firstRowY+r*cellH
				pos[g.Name] = [2]int{gx + guestW/2, gy + guestH/2}
				if b.name != "" {
					in := g.Interfaces[0]
					fmt.Fprintf(&sb, `<line class="bus link" id="topo-link-%s-%s" data-guest="%s" data-iface="%s" x1="%d" y1="%d" x2="%d" y2="%d"><title>link %s %s to %s</title></line>`,
						esc(g.Name), esc(in.Name), esc(g.Name), esc(in.Name), gx+guestW/2, busY, gx+guestW/2, gy, esc(g.Name), esc(in.Name), esc(in.Switch))
				}
				fill := colors[g.Host]
				if fill == "" {
					fill = "#888"
				}
				var ips []string
				for _, in := range g.Interfaces {
					ips = append(ips, esc(in.Name+" "+in.Switch+" "+in.Address))
				}
				fmt.Fprintf(&sb, `<g class="g guest" id="topo-guest-%s" data-guest="%s" tabindex="0" role="button" aria-label="guest %s"><title>%s (%s on %s)&#10;%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="4" fill="%s"/><text x="%d" y="%d">%s</text></g>`,
					esc(g.Name), esc(g.Name), esc(g.Name), esc(g.Name), esc(g.Kind), esc(g.Host), strings.Join(ips, "&#10;"),
					gx, gy, guestW, guestH, fill, gx+6, gy+guestH/2, esc(shorten(g.Name, 12)))
			}
		}
	}
	// Second and further interfaces: a dashed line up to their switch.
	for _, g := range st.Guests {
		for _, in := range g.Interfaces[min(1, len(g.Interfaces)):] {
			b, p := index[in.Switch], pos[g.Name]
			if b == nil {
				continue
			}
			sx, sy := b.x+b.w/2, b.y+switchH
			fmt.Fprintf(&sb, `<path class="extra link" id="topo-link-%s-%s" data-guest="%s" data-iface="%s" d="M%d %d C %d %d, %d %d, %d %d"><title>link %s %s to %s</title></path>`,
				esc(g.Name), esc(in.Name), esc(g.Name), esc(in.Name), p[0], p[1]-guestH/2, p[0], p[1]-guestH/2-40, sx, sy+40, sx, sy, esc(g.Name), esc(in.Name), esc(in.Switch))
		}
	}
	drawRouters(&sb, rl, colors, index)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func esc(s string) string { return html.EscapeString(s) }

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
