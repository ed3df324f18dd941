package impair

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"
)

// holdQueue does in the daemon what a netem qdisc does in the kernel, for
// packets queued to userspace (NFQUEUE): each packet is dropped with
// LossPct, has one bit of its payload flipped with CorruptPct, and is held
// for DelayMS ± JitterMS (uniform, like netem's default distribution; with
// jitter packets may be reordered, as with netem) before it is accepted.
// It is pure logic over the times it is given, so tests drive it with a
// fake clock; runQueue wires it to a real queue and timer.
type holdQueue struct {
	mu   sync.Mutex
	imp  Impairment
	rnd  *rand.Rand
	held heldHeap
	seq  uint64
}

// release is a verdict due: accept id (with payload in place of the
// packet's when it is not nil) or drop it.
type release struct {
	id      uint32
	accept  bool
	payload []byte
	at      time.Time
	seq     uint64 // arrival order, for packets due at the same time
}

func newHoldQueue(imp Impairment, rnd *rand.Rand) *holdQueue {
	return &holdQueue{imp: imp, rnd: rnd}
}

// set changes the impairment; packets already held keep their time.
func (h *holdQueue) set(imp Impairment) {
	h.mu.Lock()
	h.imp = imp
	h.mu.Unlock()
}

// ipv4HeaderLen is what corruption leaves alone at the front of a payload,
// so the corrupted packet still reaches the guest (a flipped header bit
// would mostly make the kernel drop it, which loss already does).
const ipv4HeaderLen = 20

// add takes packet p arriving at now. A dropped packet, or one due at once,
// comes back as a release to answer now; else it is held.
func (h *holdQueue) add(now time.Time, p queuedPacket) (release, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	imp := h.imp
	h.seq++
	r := release{id: p.id, accept: true, at: now, seq: h.seq}
	if imp.LossPct > 0 && h.rnd.Float64()*100 < imp.LossPct {
		r.accept = false
		return r, true
	}
	if imp.CorruptPct > 0 && len(p.payload) > ipv4HeaderLen && h.rnd.Float64()*100 < imp.CorruptPct {
		b := append([]byte(nil), p.payload...)
		i := ipv4HeaderLen + h.rnd.IntN(len(b)-ipv4HeaderLen)
		b[i] ^= 1 << h.rnd.IntN(8)
		r.payload = b
	}
	d := time.Duration(imp.DelayMS) * time.Millisecond
	if imp.JitterMS > 0 {
		j := time.Duration(imp.JitterMS) * time.Millisecond
		d += time.Duration(h.rnd.Int64N(int64(2*j)+1)) - j
	}
	if d <= 0 {
		return r, true
	}
	r.at = now.Add(d)
	heap.Push(&h.held, r)
	return release{}, false
}

// due pops the held packets due by now, and says when the next one is due
// (the zero time when none is held).
func (h *holdQueue) due(now time.Time) ([]release, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []release
	for len(h.held) > 0 && !h.held[0].at.After(now) {
		out = append(out, heap.Pop(&h.held).(release))
	}
	if len(h.held) == 0 {
		return out, time.Time{}
	}
	return out, h.held[0].at
}

// drain pops every held packet (to accept them all when the queue stops).
func (h *holdQueue) drain() []release {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]release, 0, len(h.held))
	for len(h.held) > 0 {
		out = append(out, heap.Pop(&h.held).(release))
	}
	return out
}

type heldHeap []release

var _ heap.Interface = (*heldHeap)(nil)

func (q heldHeap) Len() int { return len(q) }
func (q heldHeap) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].seq < q[j].seq
	}
	return q[i].at.Before(q[j].at)
}
func (q heldHeap) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *heldHeap) Push(x any)   { *q = append(*q, x.(release)) }
func (q *heldHeap) Pop() any {
	old := *q
	r := old[len(old)-1]
	*q = old[:len(old)-1]
	return r
}
