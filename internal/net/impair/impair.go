// Package impair delays, drops, corrupts and rate-limits what leaves this
// host's links: a netem (or tbf) qdisc where the kernel has netem, else a
// userspace fallback that holds packets taken from an NFQUEUE.
package impair

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/links"
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

// ErrNoNetem: the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM, module
// sch_netem), which delay, jitter, loss and corruption need; a rate alone
// works without it.
var ErrNoNetem = errors.New("the kernel has no netem qdisc (sch_netem)")

// qdiscHandle is the handle of the root qdisc an impairment puts on a link.
var qdiscHandle = netlink.MakeHandle(0x7e57, 0)

// SetImpairment replaces the root qdisc of link name by one doing imp: a
// netem qdisc (with its own rate limit) when imp delays, loses or corrupts
// packets, a token bucket (tbf) when it only limits the rate. The zero
// Impairment removes it (the link gets the kernel's default qdisc back).
func SetImpairment(ctx context.Context, name string, imp Impairment) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("impair link %s: %w", name, err)
	}
	attrs := netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: qdiscHandle, Parent: netlink.HANDLE_ROOT}
	// Whatever is there goes first: a root qdisc of another kind cannot be
	// changed into this one in place.
	if err := removeRootQdisc(link); err != nil {
		return fmt.Errorf("remove the impairment of link %s: %w", name, err)
	}
	if imp == (Impairment{}) {
		return nil
	}
	rate := uint64(imp.RateKbit) * 1000 / 8 // the kernel counts bytes per second
	var q netlink.Qdisc
	if imp == (Impairment{RateKbit: imp.RateKbit}) {
		q = tokenBucket(attrs, rate)
	} else {
		q = netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{
			Latency:     uint32(imp.DelayMS) * 1000,
			Jitter:      uint32(imp.JitterMS) * 1000,
			Loss:        float32(imp.LossPct),
			CorruptProb: float32(imp.CorruptPct),
			Rate64:      rate,
			Limit:       netemLimit,
		})
	}
	// Replace, not add: libvirt gives a VM's tap a root noqueue qdisc of
	// its own, which an add cannot override.
	if err := netlink.QdiscReplace(q); err != nil {
		if q.Type() == "netem" && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP)) {
			return fmt.Errorf("impair link %s: %w: delay, jitter, loss and corruption need it (load sch_netem, or use a kernel built with CONFIG_NET_SCH_NETEM); a rate limit alone works without it", name, ErrNoNetem)
		}
		return fmt.Errorf("impair link %s: %w", name, err)
	}
	return nil
}

// tokenBucket is a tbf qdisc limiting the link to rate bytes per second,
// with a burst of a few full frames (or 10 ms at the rate, if more) and a
// queue of 100 ms at the rate (at least 64 KiB, at most 64 MiB).
func tokenBucket(attrs netlink.QdiscAttrs, rate uint64) *netlink.Tbf {
	burst := max(rate/100, 3*1514)
	limit := min(max(rate/10, 64<<10), 64<<20)
	return &netlink.Tbf{
		QdiscAttrs: attrs,
		Rate:       rate,
		Buffer:     netlink.Xmittime(rate, uint32(burst)),
		Limit:      uint32(limit + burst),
	}
}

// removeRootQdisc deletes the root qdisc of link, if it is not the
// kernel's default.
func removeRootQdisc(link netlink.Link) error {
	qs, err := netlink.QdiscList(link)
	if err != nil {
		return err
	}
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent != netlink.HANDLE_ROOT || a.Handle == 0 {
			continue
		}
		switch q.Type() {
		case "netem", "tbf":
			if err := netlink.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				return err
			}
		}
	}
	return nil
}

// Shaper impairs the links of this host and keeps the userspace fallback's
// queues; the zero value is not ready, NewShaper makes one.
type Shaper struct {
	queues userQueues
}

var _ io.Closer = (*Shaper)(nil)

// NewShaper returns a Shaper; log receives the fallback's changes.
func NewShaper(log *slog.Logger) *Shaper { return &Shaper{queues: userQueues{log: log}} }

// Impair sets imp on the link and sets the link up or down: a netem (or
// tbf) qdisc on the link, or, where the kernel has no netem, the userspace
// fallback (usrimpair.go) with the rate as a tbf qdisc.
func (h *Shaper) Impair(ctx context.Context, link string, imp Impairment, up bool) error {
	err := SetImpairment(ctx, link, imp)
	switch {
	case errors.Is(err, ErrNoNetem):
		if ferr := h.queues.set(ctx, link, imp); errors.Is(ferr, ErrNoPeerNamespace) {
			err = fmt.Errorf("%w; %w", err, ferr)
		} else {
			err = ferr
		}
	case err == nil:
		err = h.queues.clear(link)
	}
	if err != nil {
		return err
	}
	return links.SetUp(ctx, link, up)
}

// Close stops every userspace queue of this host (its tables removed, held
// packets accepted): the daemon's shutdown.
func (h *Shaper) Close() error { return h.queues.closeAll() }
