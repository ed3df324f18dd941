// Package bridge makes and removes this host's Linux bridges and the host
// firewall rules around them: accept rules that let a bridge's ports talk
// through forward chains that drop by default, and the address and
// masquerade that take an external switch out of the host.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/links"
)

// ErrNotBridge is returned when a name we are asked to manage as a bridge
// belongs to another kind of link.
var ErrNotBridge = errors.New("link exists but is not a bridge")

// Ensure creates the Linux bridge name if it is missing, sets it up and
// reports whether it made it. The report comes from the kernel's answer to
// the creation, so two concurrent callers never both think they made it.
func Ensure(ctx context.Context, name string) (created bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := links.CheckName(name); err != nil {
		return false, err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
	br.Name = name
	br.Flags = net.FlagUp
	err = netlink.LinkAdd(br)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("create bridge %s: %w", name, err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	if link.Type() != "bridge" {
		return false, fmt.Errorf("bridge %s: %w (type %s)", name, ErrNotBridge, link.Type())
	}
	if link.Attrs().Flags&net.FlagUp != 0 {
		return false, nil
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return false, fmt.Errorf("set bridge %s up: %w", name, err)
	}
	return false, nil
}

// Delete removes the bridge name. A missing bridge is not an error;
// a link of another kind with that name is left alone and reported.
func Delete(ctx context.Context, name string) error {
	return links.DeleteTyped(ctx, name, "bridge", ErrNotBridge)
}

// Exists reports whether a bridge called name exists; a link of
// another kind by that name is not a bridge.
func Exists(name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	if links.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return link.Type() == "bridge", nil
}
