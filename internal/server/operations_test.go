package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// Defect 6: cancel by a uuid that is no longer the running action is a 409
// and leaves the running one alone.
func TestCancelWithAnEndedActionsUUIDIs409(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "lab")
	// A ends (here by its own cancel) while the gate stays shut for B.
	a, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Cancel(ctx, "lab", a); err != nil {
		t.Fatal(err)
	}
	if o, err := e.c.Follow(ctx, a, func(string) {}); err != nil || o.ErrorCode != api.ErrorCodeCancelled {
		t.Fatalf("A: %+v, %v", o, err)
	}
	b, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Cancel(ctx, "lab", a)
	if client.StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), b) {
		t.Fatalf("cancel with A's uuid while B runs: %v, want 409 naming B %s", err, b)
	}
	if code, msg := e.call(t, "POST", "/api/deployments/lab/cancel", `{"uuid":"`+a+`"}`); code != 409 || !strings.Contains(msg, b) {
		t.Fatalf("raw cancel with A's uuid: %d %q", code, msg)
	}
	if code, _ := e.call(t, "POST", "/api/deployments/lab/cancel", `{"uuid":1}`); code != 400 {
		t.Fatalf("cancel with a bad body: %d, want 400", code)
	}
	e.exec.open()
	if o, err := e.c.Follow(ctx, b, func(string) {}); err != nil || o.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("B after the stale cancel: %+v, %v; want it to succeed", o, err)
	}
	if _, err := e.c.Cancel(ctx, "lab", b); client.StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "no action is running") {
		t.Fatalf("cancel with B's uuid after B: %v", err)
	}
}

func TestCancelByOwnUUIDAndWithEmptyBody(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "lab")
	for _, body := range []string{"", "  \n", `{}`} {
		id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
		if err != nil {
			t.Fatal(err)
		}
		if code, msg := e.call(t, "POST", "/api/deployments/lab/cancel", body); code != http.StatusAccepted || !strings.Contains(msg, id) {
			t.Fatalf("cancel with body %q: %d %s", body, code, msg)
		}
		if o, _ := e.c.Follow(ctx, id, func(string) {}); o.ErrorCode != api.ErrorCodeCancelled {
			t.Fatalf("outcome %+v", o)
		}
	}
	id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.c.Cancel(ctx, "lab", id); err != nil || got != id {
		t.Fatalf("cancel by own uuid: %q, %v", got, err)
	}
	if o, _ := e.c.Follow(ctx, id, func(string) {}); o.ErrorCode != api.ErrorCodeCancelled {
		t.Fatalf("outcome %+v", o)
	}
}

func TestActionDuringShutdownIs503(t *testing.T) {
	e := newEnv(t)
	e.create(t, "lab")
	if err := e.srv.runner.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, msg := e.call(t, "POST", "/api/deployments/lab/action", `{"command":"up"}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "shutting down") {
		t.Fatalf("action during shutdown: %d %q, want 503", code, msg)
	}
}

// The events websocket tells of an action from start to end, in order, and
// ends with a normal close when the server stops.
func TestEventsOfAnActionInOrder(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.create(t, "lab")
	got := make(chan api.Event, 16)
	raws := make(chan json.RawMessage, 16)
	ended := make(chan error, 1)
	go func() {
		ended <- e.c.Events(ctx, func(ev api.Event, raw json.RawMessage) error {
			got <- ev
			raws <- raw
			return nil
		})
	}()
	// The subscription is live once the handshake is done.
	for e.srv.events.Subscribers() == 0 {
		select {
		case err := <-ended:
			t.Fatalf("events ended at once: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	id, err := e.c.Action(ctx, "lab", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	e.exec.open()
	want := []string{"action-started", "deployment-state running", "action-ended up", "deployment-state up"}
	for i, w := range want {
		var ev api.Event
		select {
		case ev = <-got:
		case <-ctx.Done():
			t.Fatalf("event %d (%s) never came", i, w)
		}
		s := string(ev.Type)
		if ev.State != nil {
			s += " " + ev.State.String()
		}
		if s != w || ev.Deployment != "lab" || ev.UUID != id || ev.Time.IsZero() {
			t.Fatalf("event %d = %+v (%s), want %s of lab, action %s", i, ev, s, w, id)
		}
		raw := <-raws
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse(time.RFC3339, m["time"].(string)); err != nil || m["type"] != string(ev.Type) {
			t.Fatalf("wire event %s: time not RFC 3339 or type missing (%v)", raw, err)
		}
		if ev.Type == api.EventActionEnded && (ev.ErrorCode == nil || *ev.ErrorCode != 0 || ev.Command == nil || ev.Command.Name != api.CmdUp) {
			t.Fatalf("action-ended = %s", raw)
		}
	}
	closed, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := e.srv.Close(closed); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, client.ErrServerStopped) {
			t.Fatalf("events at shutdown ended with %v, want the normal close", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream outlived the server's Close")
	}
}
