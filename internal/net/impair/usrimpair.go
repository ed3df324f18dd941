package impair

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/vishvananda/netlink"
)

// The userspace fallback for kernels without netem (CONFIG_NET_SCH_NETEM
// unset, no sch_netem module). Netem sits as the root qdisc of the
// host-side end of a guest's link, shaping what the host sends to the
// guest. The fallback works in the guest's own network namespace (found
// through the veth's peer): tables of the daemon's own (ip and ip6
// families, hook postrouting, "oif PEER") queue every IP packet the guest
// sends (or forwards) out of its end of the link to a netlink queue bound
// in that namespace, through the xt compat target NFQUEUE (the kernel may
// lack nft_queue; the bridge family cannot use NFQUEUE on this kernel).
// The daemon holds each packet for the delay, drops or corrupts its share
// and then accepts it (holdq.go). So the fallback delays the other
// direction of the link than netem: a round trip over the link still pays
// the delay once, and ping shows it (held on arrival instead, the packet
// would carry the kernel's receive time stamp from before the hold, and
// ping would not see the delay). A rate limit stays a tbf qdisc on the
// host-side link. The rule queues with bypass: while no daemon listens,
// packets pass unimpaired rather than being dropped. Only IP packets are
// impaired (ARP is not). Links without a namespace at the other end (the
// taps of VMs) are not supported.

// userTablePrefix names the tables of the fallback: one per link.
const userTablePrefix = "testbedos-impair-"

// queueBase is the first netlink queue number the fallback binds; numbers
// are unique per link on the host (a number bound by another process is
// skipped).
const queueBase = 0x7e00

// watchEvery is how often a queue checks that its link still exists: the
// table and listener go with the link (a guest destroyed, a deployment
// down).
const watchEvery = 500 * time.Millisecond

// userQueues are the fallback's running queues of this host, by link.
type userQueues struct {
	mu    sync.Mutex
	links map[string]*linkQueue
	log   *slog.Logger
}

func (u *userQueues) logger() *slog.Logger {
	if u.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return u.log
}

// linkQueue is one link's table, queue and listener.
type linkQueue struct {
	link  string
	index int
	peer  peerNS
	q     *nfQueue
	hold  *holdQueue
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	owner *userQueues
}

// QueueNumber reports the netlink queue number the fallback uses for link,
// and whether it impairs link at all.
func (h *Shaper) QueueNumber(link string) (uint16, bool) {
	u := &h.queues
	u.mu.Lock()
	defer u.mu.Unlock()
	lq, ok := u.links[link]
	if !ok {
		return 0, false
	}
	return lq.q.num, true
}

// set makes link's fallback do imp (a running queue changes in place),
// with the rate limit as a tbf qdisc. imp must need netem.
func (u *userQueues) set(ctx context.Context, link string, imp Impairment) error {
	if err := SetImpairment(ctx, link, Impairment{RateKbit: imp.RateKbit}); err != nil {
		return err
	}
	l, err := netlink.LinkByName(link)
	if err != nil {
		return fmt.Errorf("impair link %s: %w", link, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if lq, ok := u.links[link]; ok && lq.index == l.Attrs().Index {
		lq.hold.set(imp)
		return nil
	} else if ok {
		// The link was made anew: the old queue goes first, table and all.
		delete(u.links, link)
		_ = lq.close()
	}
	peer, err := findPeerNS(l)
	if err != nil {
		return fmt.Errorf("impair link %s: %w", link, err)
	}
	q, err := u.bind(int(peer.file.Fd()))
	if err != nil {
		peer.file.Close()
		return fmt.Errorf("impair link %s: %w", link, err)
	}
	if err := writeQueueTables(peer, link, q.num); err != nil {
		q.Close()
		peer.file.Close()
		return fmt.Errorf("impair link %s: %w", link, err)
	}
	lq := &linkQueue{
		link: link, index: l.Attrs().Index, q: q, peer: peer,
		hold: newHoldQueue(imp, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), owner: u,
	}
	if u.links == nil {
		u.links = map[string]*linkQueue{}
	}
	u.links[link] = lq
	go lq.read()
	go lq.run()
	u.logger().Info("impairing in userspace (the kernel has no netem)", "link", link, "queue", q.num)
	return nil
}

// clear stops link's fallback, if it runs: its table first (no packet is
// queued any more), then every held packet is accepted.
func (u *userQueues) clear(link string) error {
	u.mu.Lock()
	lq, ok := u.links[link]
	delete(u.links, link)
	u.mu.Unlock()
	if !ok {
		return nil
	}
	return lq.close()
}

// bind binds the lowest free queue number from queueBase. u.mu is held.
func (u *userQueues) bind(netns int) (*nfQueue, error) {
	used := map[uint16]bool{}
	for _, lq := range u.links {
		used[lq.q.num] = true
	}
	for n := uint32(queueBase); n <= 0xffff; n++ {
		if used[uint16(n)] {
			continue
		}
		q, err := openNFQueue(uint16(n), netns)
		if errors.Is(err, ErrQueueBusy) {
			continue
		}
		return q, err
	}
	return nil, errors.New("no free nfqueue number")
}

// read hands the kernel's packets to the hold queue.
func (lq *linkQueue) read() {
	for {
		ps, err := lq.q.receive()
		if err != nil {
			select {
			case <-lq.stop:
			default:
				lq.owner.logger().Warn("impairment queue stopped", "link", lq.link, "err", err)
				go lq.owner.forget(lq)
			}
			return
		}
		woke := false
		for _, p := range ps {
			if r, now := lq.hold.add(time.Now(), p); now {
				_ = lq.q.verdict(r.id, r.accept, r.payload)
			} else {
				woke = true
			}
		}
		if woke {
			select {
			case lq.wake <- struct{}{}:
			default:
			}
		}
	}
}

// run answers held packets when they are due and watches the link.
func (lq *linkQueue) run() {
	defer close(lq.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	watch := time.NewTicker(watchEvery)
	defer watch.Stop()
	for {
		rs, next := lq.hold.due(time.Now())
		for _, r := range rs {
			_ = lq.q.verdict(r.id, r.accept, r.payload)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-lq.stop:
			return
		case <-lq.wake:
		case <-timer.C:
		case <-watch.C:
			if l, err := netlink.LinkByName(lq.link); err != nil || l.Attrs().Index != lq.index || !lq.peer.alive() {
				go lq.owner.forget(lq)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// forget stops lq if it is still the link's queue (its link went away, or
// its socket failed).
func (u *userQueues) forget(lq *linkQueue) {
	u.mu.Lock()
	if u.links[lq.link] == lq {
		delete(u.links, lq.link)
	}
	u.mu.Unlock()
	_ = lq.close()
}

// close removes the table, accepts what is held and unbinds the queue.
func (lq *linkQueue) close() error {
	var err error
	lq.once.Do(func() {
		if lq.peer.alive() {
			err = deleteQueueTables(lq.peer, lq.link)
		}
		close(lq.stop)
		<-lq.done
		for _, r := range lq.hold.drain() {
			_ = lq.q.verdict(r.id, true, r.payload)
		}
		err = errors.Join(err, lq.q.Close(), lq.peer.file.Close())
	})
	return err
}

// closeAll stops every queue (the daemon's shutdown).
func (u *userQueues) closeAll() error {
	u.mu.Lock()
	links := u.links
	u.links = nil
	u.mu.Unlock()
	var errs []error
	for _, lq := range links {
		errs = append(errs, lq.close())
	}
	return errors.Join(errs...)
}

// nfqInfoV3 is struct xt_NFQ_info_v3 (host byte order): the queue, one
// queue in all, and bypass (accept while nobody listens).
func nfqInfoV3(num uint16) []byte {
	b := make([]byte, 6)
	binary.NativeEndian.PutUint16(b[0:], num)
	binary.NativeEndian.PutUint16(b[2:], 1)
	binary.NativeEndian.PutUint16(b[4:], 1) // NFQ_FLAG_BYPASS
	return b
}

// queuePriority: the queue rule runs first in postrouting.
var queuePriority = nftables.ChainPriorityRef(-300)

// queueFamilies are the families of the tables: IPv4 and IPv6.
var queueFamilies = []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6}

// writeQueueTables (re)writes the tables of link in its peer's namespace:
// packets leaving through the peer go to queue num.
func writeQueueTables(peer peerNS, link string, num uint16) error {
	conn, err := nftables.New(nftables.WithNetNSFd(int(peer.file.Fd())))
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	name := userTablePrefix + link
	accept := nftables.ChainPolicyAccept
	info := xt.Unknown(nfqInfoV3(num))
	oif := binary.NativeEndian.AppendUint32(nil, uint32(peer.index))
	for _, fam := range queueFamilies {
		table := &nftables.Table{Family: fam, Name: name}
		// Add then delete then add: whatever was there goes.
		conn.AddTable(table)
		conn.DelTable(table)
		conn.AddTable(table)
		ch := conn.AddChain(&nftables.Chain{Table: table, Name: "postrouting", Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPostrouting, Priority: queuePriority, Policy: &accept})
		conn.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIF, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: oif},
			&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info},
		}})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write nftables tables %s (NFQUEUE) in the namespace of %s: %w", name, peer.path, err)
	}
	return nil
}

// deleteQueueTables removes link's tables from its peer's namespace.
func deleteQueueTables(peer peerNS, link string) error {
	conn, err := nftables.New(nftables.WithNetNSFd(int(peer.file.Fd())))
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	for _, fam := range queueFamilies {
		table := &nftables.Table{Family: fam, Name: userTablePrefix + link}
		conn.AddTable(table)
		conn.DelTable(table)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("delete nftables tables %s%s: %w", userTablePrefix, link, err)
	}
	return nil
}
