// Package netplumb creates and removes the host's network plumbing for a
// testbed: Linux bridges, the firewall exception that lets guests on our
// bridges reach each other, and waiting for links to disappear. Everything
// talks netlink directly; nothing shells out to ip.
//
// Functions act in the network namespace of the calling thread, which for
// ordinary goroutines is the namespace of the process.
package netplumb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNotBridge is returned when a name we are asked to manage as a bridge
// belongs to another kind of link.
var ErrNotBridge = errors.New("link exists but is not a bridge")

// EnsureBridge creates the Linux bridge name if it is missing and sets it up.
// Calling it again, or concurrently, for the same name is harmless.
func EnsureBridge(ctx context.Context, name string) error {
	_, err := ensureBridge(ctx, name)
	return err
}

// ensureBridge is EnsureBridge, also reporting whether it made the bridge.
func ensureBridge(ctx context.Context, name string) (created bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := checkName(name); err != nil {
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

// DeleteBridge removes the bridge name. A missing bridge is not an error;
// a link of another kind with that name is left alone and reported.
func DeleteBridge(ctx context.Context, name string) error {
	return deleteTyped(ctx, name, "bridge", ErrNotBridge)
}

// deleteTyped removes the link name if it is of kind typ; a missing link is
// fine, one of another kind is left alone and reported as notTyp.
func deleteTyped(ctx context.Context, name, typ string, notTyp error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s %s: %w", typ, name, err)
	}
	if link.Type() != typ {
		return fmt.Errorf("delete %s %s: %w (type %s)", typ, name, notTyp, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s %s: %w", typ, name, err)
	}
	return nil
}

// LinksWithPrefix lists the names of the links whose name starts with prefix,
// for finding what a deployment left behind.
func LinksWithPrefix(prefix string) ([]string, error) {
	var (
		links []netlink.Link
		err   error
	)
	// A dump races with concurrent changes; the kernel then flags it as
	// interrupted and a retry gets a consistent one once the host is
	// quieter (hundreds of guests coming up at once keep it busy).
	for i := range 50 {
		links, err = netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
		time.Sleep(time.Duration(i) * time.Millisecond)
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var names []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			names = append(names, l.Attrs().Name)
		}
	}
	if err != nil {
		return names, fmt.Errorf("list links: %w", err)
	}
	return names, nil
}

// LinkExists reports whether a link called name exists.
func LinkExists(name string) (bool, error) {
	_, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return true, nil
}

// BridgeExists reports whether a bridge called name exists; a link of
// another kind by that name is not a bridge.
func BridgeExists(name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return link.Type() == "bridge", nil
}

// DeleteLink removes the link name; a missing link is not an error.
func DeleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func checkName(name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("invalid link name %q (1 to %d bytes, no blanks, / or :)", name, unix.IFNAMSIZ-1)
	}
	return nil
}
