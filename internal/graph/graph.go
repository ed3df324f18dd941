// Package graph turns a deployment's resolved state into files for other
// tools: the topology as a graph (JSON, Graphviz DOT, Mermaid) and the
// guests as an inventory (Ansible, ssh_config, /etc/hosts, JSON).
package graph

import (
	"fmt"
	"strings"

	"github.com/testbedos/testbedos/internal/topology"
)

// Node kinds of a Graph.
const (
	NodeGuest  = "guest"
	NodeSwitch = "switch"
	NodeRouter = "router"
)

// Graph is a deployment's topology: guests, switches and routers, and one
// edge per guest interface or router port. Node ids are unique across
// kinds ("guest:web", "switch:sw0", "router:r1").
type Graph struct {
	Deployment string `json:"deployment"`
	Nodes      []Node `json:"nodes"`
	Edges      []Edge `json:"edges"`
}

// Node is a guest, switch or router.
type Node struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Label string `json:"label"`
	// Host is the cluster host the node runs on (switches: empty).
	Host string `json:"host,omitempty"`
	// GuestKind is netns, libvirt or docker (guests only).
	GuestKind string `json:"guest_kind,omitempty"`
	// Subnet of a switch.
	Subnet string `json:"subnet,omitempty"`
	// External is set on a switch whose host side masquerades out.
	External bool `json:"external,omitempty"`
}

// Edge joins a guest or router to a switch.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Interface is the guest's interface or the router port's name.
	Interface string `json:"interface"`
	// Address is its CIDR address; "dynamic" for a DHCP interface.
	Address string `json:"address,omitempty"`
}

// Build makes the graph of st, in the state's order.
func Build(st *topology.State) Graph {
	g := Graph{Deployment: st.Deployment, Nodes: []Node{}, Edges: []Edge{}}
	for _, sw := range st.Switches {
		g.Nodes = append(g.Nodes, Node{ID: "switch:" + sw.Name, Kind: NodeSwitch, Name: sw.Name,
			Label: sw.Name + " " + sw.Subnet, Subnet: sw.Subnet, External: sw.External != nil})
	}
	for _, r := range st.Routers {
		g.Nodes = append(g.Nodes, Node{ID: "router:" + r.Name, Kind: NodeRouter, Name: r.Name, Label: r.Name, Host: r.Host})
		for _, p := range r.Ports {
			g.Edges = append(g.Edges, Edge{From: "router:" + r.Name, To: "switch:" + p.Switch, Interface: p.Name, Address: p.Address})
		}
	}
	for _, gu := range st.Guests {
		g.Nodes = append(g.Nodes, Node{ID: "guest:" + gu.Name, Kind: NodeGuest, Name: gu.Name,
			Label: gu.Name, Host: gu.Host, GuestKind: gu.Kind})
		for _, in := range gu.Interfaces {
			addr := in.Address
			if in.Dynamic && addr == "" {
				addr = "dynamic"
			}
			g.Edges = append(g.Edges, Edge{From: "guest:" + gu.Name, To: "switch:" + in.Switch, Interface: in.Name, Address: addr})
		}
	}
	return g
}

// dotID quotes s as a DOT ID: a double-quoted string with " and \ escaped
// and line breaks removed, so no name can end the string.
func dotID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ", "\r", " ")
	return `"` + r.Replace(s) + `"`
}

// DOT renders g as a Graphviz graph: switches as boxes, routers as
// diamonds, guests as ellipses filled with their host's colour, edges
// labelled with the interface and its address.
func DOT(g Graph) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s {\n", dotID(g.Deployment))
	b.WriteString("  graph [overlap=false, splines=true];\n  node [fontname=\"sans-serif\", fontsize=10];\n  edge [fontname=\"sans-serif\", fontsize=8];\n")
	colors := hostColors(g)
	for _, n := range g.Nodes {
		switch n.Kind {
		case NodeSwitch:
			attrs := `shape=box, style="rounded,filled", fillcolor="#eeeeee"`
			if n.External {
				attrs = `shape=box, style="rounded,filled", fillcolor="#eef7ee", color="#2a7a2a"`
			}
			fmt.Fprintf(&b, "  %s [label=%s, %s];\n", dotID(n.ID), dotID(n.Label), attrs)
		case NodeRouter:
			fmt.Fprintf(&b, "  %s [label=%s, shape=diamond, style=filled, fillcolor=\"#555555\", fontcolor=white];\n", dotID(n.ID), dotID(n.Label))
		default:
			fmt.Fprintf(&b, "  %s [label=%s, shape=ellipse, style=filled, fillcolor=%s, fontcolor=white, tooltip=%s];\n",
				dotID(n.ID), dotID(n.Label), dotID(colors[n.Host]), dotID(n.GuestKind+" on "+n.Host))
		}
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -- %s [label=%s];\n", dotID(e.From), dotID(e.To), dotID(strings.TrimSpace(e.Interface+" "+e.Address)))
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// Mermaid renders g as a Mermaid flowchart. Node ids are made of safe
// characters; labels are quoted with Mermaid's entity for ".
func Mermaid(g Graph) []byte {
	var b strings.Builder
	b.WriteString("graph TD\n")
	ids := map[string]string{}
	for i, n := range g.Nodes {
		ids[n.ID] = fmt.Sprintf("n%d", i)
	}
	label := func(s string) string {
		return `"` + strings.NewReplacer(`"`, "#quot;", "\n", " ").Replace(s) + `"`
	}
	for _, n := range g.Nodes {
		id, l := ids[n.ID], label(n.Label)
		switch n.Kind {
		case NodeSwitch:
			fmt.Fprintf(&b, "  %s[%s]\n", id, l)
		case NodeRouter:
			fmt.Fprintf(&b, "  %s{%s}\n", id, l)
		default:
			fmt.Fprintf(&b, "  %s([%s])\n", id, l)
		}
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s ---|%s| %s\n", ids[e.From], label(strings.TrimSpace(e.Interface+" "+e.Address)), ids[e.To])
	}
	return []byte(b.String())
}

// palette is the GUI's: hosts in the order they first appear.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#e15759", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"}

func hostColors(g Graph) map[string]string {
	out := map[string]string{}
	var hosts []string
	for _, n := range g.Nodes {
		if n.Kind == NodeGuest {
			if _, ok := out[n.Host]; !ok {
				out[n.Host] = ""
				hosts = append(hosts, n.Host)
			}
		}
	}
	for i, h := range hosts {
		out[h] = palette[i%len(palette)]
	}
	return out
}
