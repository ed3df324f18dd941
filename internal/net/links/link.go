// Package links finds, makes and deletes this host's network links by name:
// guests' veth pairs, lookups by name or prefix, up and down, and waiting
// for links to disappear. It talks netlink; nothing shells out to ip.
//
// Functions act in the network namespace of the calling thread, which for
// ordinary goroutines is the namespace of the process.
package links

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DeleteTyped removes the link name if it is of kind typ; a missing link is
// fine, one of another kind is left alone and reported as notTyp.
func DeleteTyped(ctx context.Context, name, typ string, notTyp error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	link, err := netlink.LinkByName(name)
	if IsNotFound(err) {
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

// WithPrefix lists the names of the links whose name starts with prefix,
// for finding what a deployment left behind.
func WithPrefix(prefix string) ([]string, error) {
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

// Exists reports whether a link called name exists.
func Exists(name string) (bool, error) {
	_, err := netlink.LinkByName(name)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up link %s: %w", name, err)
	}
	return true, nil
}

// Delete removes the link name; a missing link is not an error.
func Delete(name string) error {
	link, err := netlink.LinkByName(name)
	if IsNotFound(err) {
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

// IsNotFound reports whether err says a link does not exist.
func IsNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// CheckName refuses what the kernel would not take as a link name.
func CheckName(name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || strings.ContainsAny(name, "/ \t\n:") {
		return fmt.Errorf("invalid link name %q (1 to %d bytes, no blanks, / or :)", name, unix.IFNAMSIZ-1)
	}
	return nil
}
