package hostnet

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/testbedos/testbedos/internal/net/links"
)

// DetachedPorts returns, of ports (host-side interface names), those that
// exist but are not ports of bridge, and those that do not exist. A bridge
// deleted and made again has no ports: every guest interface that was on it
// is then detached.
func (h *Host) DetachedPorts(ctx context.Context, bridge string, ports []string) (detached, gone []string, err error) {
	br, err := netlink.LinkByName(bridge)
	brIndex := 0
	switch {
	case links.IsNotFound(err):
	case err != nil:
		return nil, nil, fmt.Errorf("look up bridge %s: %w", bridge, err)
	default:
		brIndex = br.Attrs().Index
	}
	for _, p := range ports {
		link, err := netlink.LinkByName(p)
		if links.IsNotFound(err) {
			gone = append(gone, p)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("look up link %s: %w", p, err)
		}
		if brIndex == 0 || link.Attrs().MasterIndex != brIndex {
			detached = append(detached, p)
		}
	}
	return detached, gone, nil
}

// AttachPorts makes each of ports a port of bridge again and sets it up.
func (h *Host) AttachPorts(ctx context.Context, bridge string, ports []string) error {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", bridge, err)
	}
	for _, p := range ports {
		link, err := netlink.LinkByName(p)
		if err != nil {
			return fmt.Errorf("look up link %s: %w", p, err)
		}
		if err := netlink.LinkSetMaster(link, br); err != nil {
			return fmt.Errorf("put %s on bridge %s: %w", p, bridge, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", p, err)
		}
	}
	return nil
}
