package links

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// SetUp sets link name administratively up or down. Taking one end of a
// veth down takes the carrier of the other end with it.
func SetUp(ctx context.Context, name string, up bool) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if up {
		err = netlink.LinkSetUp(link)
	} else {
		err = netlink.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("set link %s %s: %w", name, map[bool]string{true: "up", false: "down"}[up], err)
	}
	return nil
}

// IsUp reports whether link name is administratively up.
func IsUp(ctx context.Context, name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("link %s: %w", name, err)
	}
	return link.Attrs().Flags&net.FlagUp != 0, nil
}
