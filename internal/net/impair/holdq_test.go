package impair

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// TestHoldQueue drives the hold logic with a fake clock: every packet is
// answered at arrival + delay ± jitter, loss drops its share at once,
// corruption flips one bit past the IP header.
func TestHoldQueue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	payload := bytes.Repeat([]byte{0xaa}, 64)
	tests := []struct {
		name string
		imp  Impairment
		n    int
		// check sees every release with its arrival time.
		check func(t *testing.T, got []release, arrived map[uint32]time.Time)
	}{
		{"delay", Impairment{DelayMS: 50}, 10, func(t *testing.T, got []release, arrived map[uint32]time.Time) {
			for i, r := range got {
				if !r.accept || r.at.Sub(arrived[r.id]) != 50*ms || r.id != uint32(i) {
					t.Errorf("release %d: %+v (arrived %v)", i, r, arrived[r.id])
				}
			}
		}},
		{"jitter", Impairment{DelayMS: 100, JitterMS: 10}, 200, func(t *testing.T, got []release, arrived map[uint32]time.Time) {
			spread := map[bool]int{}
			for _, r := range got {
				d := r.at.Sub(arrived[r.id])
				if d < 90*ms || d > 110*ms {
					t.Errorf("held %v, want 90..110 ms", d)
				}
				spread[d > 100*ms]++
			}
			if spread[true] < 50 || spread[false] < 50 {
				t.Errorf("jitter one-sided: %v", spread)
			}
		}},
		{"loss", Impairment{LossPct: 25}, 1000, func(t *testing.T, got []release, _ map[uint32]time.Time) {
			dropped := 0
			for _, r := range got {
				if !r.accept {
					dropped++
				}
			}
			if dropped < 200 || dropped > 300 {
				t.Errorf("dropped %d of 1000 at 25%%", dropped)
			}
		}},
		{"corrupt", Impairment{CorruptPct: 100}, 50, func(t *testing.T, got []release, _ map[uint32]time.Time) {
			for _, r := range got {
				if !r.accept || len(r.payload) != len(payload) || !bytes.Equal(r.payload[:ipv4HeaderLen], payload[:ipv4HeaderLen]) {
					t.Fatalf("corrupted release %+v", r)
				}
				diff := 0
				for i := range payload {
					for b := r.payload[i] ^ payload[i]; b != 0; b &= b - 1 {
						diff++
					}
				}
				if diff != 1 {
					t.Errorf("%d bits flipped, want 1", diff)
				}
			}
		}},
		{"none", Impairment{}, 5, func(t *testing.T, got []release, arrived map[uint32]time.Time) {
			for _, r := range got {
				if !r.accept || r.payload != nil || !r.at.Equal(arrived[r.id]) {
					t.Errorf("release %+v", r)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHoldQueue(tt.imp, rand.New(rand.NewPCG(1, 2)))
			now := t0
			arrived := map[uint32]time.Time{}
			var got []release
			for i := range tt.n {
				arrived[uint32(i)] = now
				if r, ok := h.add(now, queuedPacket{id: uint32(i), payload: payload}); ok {
					got = append(got, r)
				}
				// Nothing is due before its time.
				rs, _ := h.due(now)
				for _, r := range rs {
					if r.at.After(now) {
						t.Fatalf("released early: %+v at %v", r, now)
					}
				}
				got = append(got, rs...)
				now = now.Add(ms)
			}
			for {
				rs, next := h.due(now)
				got = append(got, rs...)
				if next.IsZero() {
					break
				}
				now = next
			}
			if len(got) != tt.n {
				t.Fatalf("%d releases for %d packets", len(got), tt.n)
			}
			if !bytes.Equal(payload, bytes.Repeat([]byte{0xaa}, 64)) {
				t.Fatal("the packet's own payload was changed")
			}
			tt.check(t, got, arrived)
		})
	}
}

// TestHoldQueueChangeAndDrain: a changed impairment applies to packets
// arriving later; drain hands back whatever is held.
func TestHoldQueueChangeAndDrain(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHoldQueue(Impairment{DelayMS: 100}, rand.New(rand.NewPCG(1, 2)))
	h.add(t0, queuedPacket{id: 1})
	h.set(Impairment{DelayMS: 10})
	h.add(t0, queuedPacket{id: 2})
	rs, next := h.due(t0.Add(10 * time.Millisecond))
	if len(rs) != 1 || rs[0].id != 2 || !next.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("due at 10 ms: %+v, next %v", rs, next)
	}
	if rs := h.drain(); len(rs) != 1 || rs[0].id != 1 {
		t.Fatalf("drain: %+v", rs)
	}
	if rs, next := h.due(t0.Add(time.Hour)); len(rs) != 0 || !next.IsZero() {
		t.Fatalf("after drain: %+v %v", rs, next)
	}
}
