package netplumb

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Impairment is what a netem qdisc does to the packets leaving a link. The
// zero value impairs nothing.
type Impairment struct {
	DelayMS    int
	JitterMS   int
	LossPct    float64
	RateKbit   int
	CorruptPct float64
}

// netemLimit is the netem queue's length in packets: enough for a delayed
// fast link (10 000 packets of 1500 bytes are 120 Mbit, a second at
// 100 Mbit/s) without holding unbounded memory.
const netemLimit = 10000

// SetImpairment makes the root qdisc of link name a netem qdisc doing imp,
// replacing any root qdisc there; the zero Impairment removes it (the link
// gets the kernel's default qdisc back).
func SetImpairment(ctx context.Context, name string, imp Impairment) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("impair link %s: %w", name, err)
	}
	attrs := netlink.QdiscAttrs{
		LinkIndex: link.Attrs().Index,
		Handle:    netlink.MakeHandle(0x7e57, 0),
		Parent:    netlink.HANDLE_ROOT,
	}
	if imp == (Impairment{}) {
		err := netlink.QdiscDel(&netlink.GenericQdisc{QdiscAttrs: attrs, QdiscType: "netem"})
		// No qdisc of ours there (ENOENT, or EINVAL deleting the default).
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("remove the impairment of link %s: %w", name, err)
		}
		return nil
	}
	q := netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{
		Latency:     uint32(imp.DelayMS) * 1000,
		Jitter:      uint32(imp.JitterMS) * 1000,
		Loss:        float32(imp.LossPct),
		CorruptProb: float32(imp.CorruptPct),
		Rate64:      uint64(imp.RateKbit) * 1000 / 8, // the kernel counts bytes per second
		Limit:       netemLimit,
	})
	if err := netlink.QdiscReplace(q); err != nil {
		return fmt.Errorf("impair link %s: %w", name, err)
	}
	return nil
}

// SetLinkUp sets link name administratively up or down. Taking one end of a
// veth down takes the carrier of the other end with it.
func SetLinkUp(ctx context.Context, name string, up bool) error {
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

// LinkUp reports whether link name is administratively up.
func LinkUp(ctx context.Context, name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("link %s: %w", name, err)
	}
	return link.Attrs().Flags&net.FlagUp != 0, nil
}

// Impair implements the engine's optional Impairer on this host's network.
func (h *Host) Impair(ctx context.Context, link string, imp Impairment, up bool) error {
	if err := SetImpairment(ctx, link, imp); err != nil {
		return err
	}
	return SetLinkUp(ctx, link, up)
}

// LinkUp implements the engine's optional Impairer: whether the link is up.
func (h *Host) LinkUp(ctx context.Context, link string) (bool, error) { return LinkUp(ctx, link) }
