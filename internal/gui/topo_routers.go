package gui

import (
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/topology"
)

// Routers sit in a row above the switches. A port is a line from the router
// to the top of its switch, where the port's gateway address is written.
// A switch on the first shelf gets a straight line; one further down gets a
// line routed around the blocks: down the left margin, then along the gap
// above its shelf, so it never crosses a guest.

const (
	routerH   = 34
	routerGap = 28 // between routers
	// routerRow is the height the router row adds above the switches.
	routerRow = routerH + 64
	// portW is the room one router port takes on top of its switch.
	portW = 96
)

// linkColors tell the routers' links apart where they share the margin.
var linkColors = []string{"#333", "#a63603", "#225ea8", "#6a3d9a", "#238b45"}

func linkColor(i int) string { return linkColors[i%len(linkColors)] }

type routerBox struct {
	r    *topology.Router
	x, w int
}

type routerLayout struct {
	boxes  []routerBox
	height int
	width  int
	// ports lists, per switch, the routers' ports on it in order.
	ports map[string][]portRef
	order []portRef // every port, router by router
}

type portRef struct {
	router int // index into boxes
	k      int // its place among the ports on its switch
	port   topology.RouterPort
}

func layoutRouters(rs []topology.Router) routerLayout {
	rl := routerLayout{ports: map[string][]portRef{}}
	if len(rs) == 0 {
		return rl
	}
	x := margin
	for i := range rs {
		r := &rs[i]
		w := max(80, 20+7*len(r.Name))
		rl.boxes = append(rl.boxes, routerBox{r: r, x: x, w: w})
		x += w + routerGap
		for _, p := range r.Ports {
			ref := portRef{router: i, k: len(rl.ports[p.Switch]), port: p}
			rl.ports[p.Switch] = append(rl.ports[p.Switch], ref)
			rl.order = append(rl.order, ref)
		}
	}
	rl.height, rl.width = routerRow, x-routerGap+margin
	return rl
}

// entry is where port k of a switch block meets its top.
func entry(b *block, k int) int { return b.x + 20 + k*portW }

func drawRouterLinks(sb *strings.Builder, rl routerLayout, index map[string]*block) {
	if len(rl.boxes) == 0 {
		return
	}
	firstShelf := margin + rl.height
	for _, ref := range rl.order {
		b, k := index[ref.port.Switch], ref.k
		if b == nil {
			continue
		}
		box := rl.boxes[ref.router]
		rx, ry := box.x+box.w/2, margin+routerH
		ex := entry(b, k)
		if b.y == firstShelf {
			fmt.Fprintf(sb, `<path class="rlink" stroke="%s" d="M%d %d L%d %d"/>`, linkColor(ref.router), rx, ry, ex, b.y)
			continue
		}
		// Around the blocks: the left margin, then the gap above the shelf.
		lane := 4 + (ref.router%4)*3
		chY := ry + 12 + (ref.router%4)*4
		gapY := b.y - blockGap + 6 + (ref.router%4)*3
		fmt.Fprintf(sb, `<path class="rlink" stroke="%s" d="M%d %d V%d H%d V%d H%d V%d"/>`, linkColor(ref.router), rx, ry, chY, lane, gapY, ex, b.y)
	}
}

func drawRouters(sb *strings.Builder, rl routerLayout, colors map[string]string, index map[string]*block) {
	// Gateway addresses on top of their switches.
	for _, ref := range rl.order {
		if b := index[ref.port.Switch]; b != nil {
			fmt.Fprintf(sb, `<text class="gw" x="%d" y="%d">%s</text>`, entry(b, ref.k)+4, b.y-7, esc(ref.port.Address))
		}
	}
	for i, box := range rl.boxes {
		r := box.r
		fill := colors[r.Host]
		if fill == "" {
			fill = "#555"
		}
		var tip []string
		for _, p := range r.Ports {
			tip = append(tip, esc(p.Name+" on "+p.Switch+" "+p.Address))
		}
		for _, n := range r.NAT {
			tip = append(tip, esc(n.Type+" "+n.LogicalIP+" → "+n.ExternalIP))
		}
		for _, d := range r.DHCP {
			tip = append(tip, esc("DHCP on "+d.Switch))
		}
		for _, s := range r.StaticRoutes {
			tip = append(tip, esc("route "+s.Prefix+" via "+s.Nexthop))
		}
		fmt.Fprintf(sb, `<g class="router" id="topo-router-%s"><title>router %s (on %s)&#10;%s</title><rect x="%d" y="%d" width="%d" height="%d" rx="14" fill="%s" stroke="%s" stroke-width="3"/><text x="%d" y="%d">⇄ %s</text></g>`,
			esc(r.Name), esc(r.Name), esc(r.Host), strings.Join(tip, "&#10;"),
			box.x, margin, box.w, routerH, fill, linkColor(i), box.x+10, margin+routerH/2, esc(r.Name))
	}
}

// externalText describes the host's side of an external switch.
func externalText(e *topology.ExternalSide) string {
	return "external: host " + e.Address + " (NAT out)"
}
