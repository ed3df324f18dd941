package router

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/topology"
)

// BrokenPorts lists the ports of r whose host end is gone or no longer on
// its bridge (a bridge deleted and made again).
func BrokenPorts(r topology.Router) ([]string, error) {
	var out []string
	for _, p := range r.Ports {
		link, err := netlink.LinkByName(p.HostName)
		if links.IsNotFound(err) {
			out = append(out, fmt.Sprintf("port %s on bridge %s", p.HostName, p.Bridge))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up link %s: %w", p.HostName, err)
		}
		br, err := netlink.LinkByName(p.Bridge)
		if links.IsNotFound(err) || err == nil && link.Attrs().MasterIndex != br.Attrs().Index {
			out = append(out, fmt.Sprintf("port %s on bridge %s", p.HostName, p.Bridge))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up bridge %s: %w", p.Bridge, err)
		}
	}
	return out, nil
}
