package events

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

func drain(s *Subscription) []api.Event {
	var out []api.Event
	for e := range s.C {
		out = append(out, e)
	}
	return out
}

func TestEverySubscriberGetsEveryEventInOrder(t *testing.T) {
	h := New(8)
	a, b := h.Subscribe(), h.Subscribe()
	for _, d := range []string{"one", "two", "three"} {
		h.Publish(api.Event{Type: api.EventDeploymentState, Deployment: d})
	}
	h.Close()
	for _, s := range []*Subscription{a, b} {
		got := drain(s)
		if len(got) != 3 || got[0].Deployment != "one" || got[2].Deployment != "three" {
			t.Fatalf("events = %+v", got)
		}
		if got[0].Time.IsZero() {
			t.Errorf("Publish did not stamp the time")
		}
		if !errors.Is(s.Err(), ErrClosed) {
			t.Errorf("Err = %v, want ErrClosed", s.Err())
		}
	}
	if s := h.Subscribe(); !errors.Is(s.Err(), ErrClosed) || len(drain(s)) != 0 {
		t.Errorf("subscribing to a closed hub gave a live subscription")
	}
	h.Publish(api.Event{Type: api.EventActionStarted}) // no panic after Close
}

func TestSlowSubscriberIsDroppedAndNeverBlocks(t *testing.T) {
	h := New(4)
	slow, fast := h.Subscribe(), h.Subscribe()
	var wg sync.WaitGroup
	var got []api.Event
	wg.Add(1)
	go func() {
		defer wg.Done()
		got = drain(fast)
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10_000 {
			h.Publish(api.Event{Type: api.EventActionEnded})
			time.Sleep(time.Microsecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Publish blocked on a subscriber that reads nothing")
	}
	if n := len(drain(slow)); n != 4 {
		t.Errorf("the slow subscriber kept %d events, want its buffer (4)", n)
	}
	if !errors.Is(slow.Err(), ErrTooSlow) {
		t.Errorf("slow Err = %v, want ErrTooSlow", slow.Err())
	}
	h.Close()
	wg.Wait()
	if len(got) == 0 {
		t.Errorf("the reading subscriber got nothing")
	}
	if h.Subscribers() != 0 {
		t.Errorf("%d subscribers left after Close", h.Subscribers())
	}
}

func TestCloseSubscription(t *testing.T) {
	h := New(2)
	s := h.Subscribe()
	h.Publish(api.Event{Type: api.EventActionStarted})
	s.Close()
	s.Close() // twice is fine
	h.Publish(api.Event{Type: api.EventActionEnded})
	if got := drain(s); len(got) != 1 || got[0].Type != api.EventActionStarted {
		t.Fatalf("after Close: %+v", got)
	}
	if s.Err() != nil || h.Subscribers() != 0 {
		t.Fatalf("Err %v, subscribers %d", s.Err(), h.Subscribers())
	}
}
