package netns

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/net/links"
)

// vethReaper deletes the veth pairs of many guests being destroyed at once
// in few kernel requests.
//
// Every deletion of a link takes the rtnl lock and, under it, waits for RCU
// grace periods; deleted one request per guest, N guests pay that N times
// in a row (tens of milliseconds per handful of guests on a small host).
// Freeing the namespaces instead leaves the work to the kernel's cleanup,
// which is batched too but slower still. One RTM_DELLINK for a link group
// deletes every link of the group, and each veth's peer with it, in one go:
// the reaper gives the host ends of every pair queued meanwhile a fresh
// group and deletes that group.
//
// Batches run one after the other: the next one starts once the links of
// the previous one have disappeared from the host (the rtnl part of the
// deletion is over then; the kernel's request returns only after a later
// RCU barrier), so requests arriving in the meantime form the next batch.
type vethReaper struct {
	links *links.Watcher

	mu       sync.Mutex
	inflight int // batches running: 0 or 1
	queue    []*reapJob
	held     []int       // namespace descriptors (see hold)
	idle     *time.Timer // closes held once nothing has been queued for a while
}

// holdFor is how long the reaper must have had nothing to do before it
// lets the kernel free the namespaces it holds.
const holdFor = 100 * time.Millisecond

// hold keeps the namespace open (fd < 0: none) until the reaper is idle.
// Freeing a namespace is the kernel's most expensive part of a teardown,
// done in a background worker that competes for the rtnl lock with the
// deletions of the veths still to go; the guest is gone without it (no
// name, no processes, no veths), so it waits until the burst is over and
// then all namespaces are freed in one batch.
func (r *vethReaper) hold(fd int) {
	if fd < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = append(r.held, fd)
	r.armIdle()
}

// armIdle (re)starts the idle timer. r.mu is held.
func (r *vethReaper) armIdle() {
	if r.idle == nil {
		r.idle = time.AfterFunc(holdFor, r.release)
		return
	}
	r.idle.Reset(holdFor)
}

func (r *vethReaper) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight > 0 || len(r.queue) > 0 {
		r.armIdle()
		return
	}
	for _, fd := range r.held {
		unix.Close(fd)
	}
	r.held = nil
}

// reapJob is one guest's veths: their host ends by index, a watch for
// their names, and where the outcome of the deleting request goes.
type reapJob struct {
	indexes []int
	gone    *links.Gone
	result  chan error // buffered; receives once
}

// reap queues the veths whose host ends have the given indexes for
// deletion. gone must watch their names; it is how the reaper learns that a
// batch is through. The returned channel receives the error of the request
// that deleted them (nil on success).
func (r *vethReaper) reap(indexes []int, gone *links.Gone) <-chan error {
	job := &reapJob{indexes: indexes, gone: gone, result: make(chan error, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, job)
	if r.idle != nil {
		r.idle.Reset(holdFor)
	}
	r.kick()
	r.mu.Unlock()
	return job.result
}

// kick starts a batch of everything queued unless one is in flight. r.mu
// is held.
func (r *vethReaper) kick() {
	if len(r.queue) == 0 || r.inflight > 0 {
		return
	}
	batch := r.queue
	r.queue = nil
	r.inflight++
	go r.run(batch)
}

// run deletes one batch and frees its slot once its links are gone, or its
// request has returned (also when it failed).
func (r *vethReaper) run(batch []*reapJob) {
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		var indexes []int
		for _, j := range batch {
			indexes = append(indexes, j.indexes...)
		}
		err := deleteGroup(indexes)
		for _, j := range batch {
			j.result <- err
		}
	}()
wait:
	for _, j := range batch {
		select {
		case <-j.gone.Done():
		case <-sent:
			break wait
		}
	}
	r.mu.Lock()
	r.inflight--
	r.kick()
	r.mu.Unlock()
}

// deleteGroup deletes the links with the given indexes (veths: each with
// its peer) in one RTM_DELLINK, by moving them into a link group of their
// own first. Links already gone are skipped.
func deleteGroup(indexes []int) error {
	sock, err := nl.Subscribe(unix.NETLINK_ROUTE) // no groups: a plain socket
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer sock.Close()
	sockets := map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: sock}}

	group, err := freshGroup()
	if err != nil {
		return err
	}
	grouped := 0
	for _, idx := range indexes {
		req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
		req.Sockets = sockets
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(idx)
		req.AddData(msg)
		req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
		if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
			if errors.Is(err, unix.ENODEV) {
				continue // gone already
			}
			return fmt.Errorf("set link group of index %d: %w", idx, err)
		}
		grouped++
	}
	if grouped == 0 {
		return nil
	}
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.Sockets = sockets
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC)) // index 0: by group
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link group %d: %w", group, err)
	}
	return nil
}

// freshGroup picks a link group for one batch: a random one from the upper
// half of the 32-bit range that no link of this namespace is in (links are
// in group 0 unless someone set another), so the delete by group takes only
// the links this batch put there.
func freshGroup() (uint32, error) {
	used := map[uint32]bool{}
	links, err := netlink.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return 0, fmt.Errorf("pick a link group: %w", err)
	}
	for _, l := range links {
		used[l.Attrs().Group] = true
	}
	for {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("pick a link group: %w", err)
		}
		if g := binary.LittleEndian.Uint32(b[:]) | 1<<31; !used[g] {
			return g, nil
		}
	}
}
