package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

var (
	fpA = "sha256:" + strings.Repeat("aa", 32)
	fpB = "sha256:" + strings.Repeat("bb", 32)
)

func joinReq(name, fp string) api.JoinRequest {
	return api.JoinRequest{
		Name: name, Fingerprint: fp, URL: "https://10.0.0.2:3355",
		Host: api.HostConfig{Name: name, IP: "10.0.0.2", TestbedNIC: "eth0", CPUs: 2, MemoryMB: 512},
	}
}

// recorder keeps what Members publishes and counts.
type recorder struct {
	mu     sync.Mutex
	events []api.Event
	count  int
	got    chan api.Event
}

func newRecorder() *recorder { return &recorder{got: make(chan api.Event, 16)} }

func (r *recorder) publish(e api.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.got <- e
}

func (r *recorder) setCount(n int) {
	r.mu.Lock()
	r.count = n
	r.mu.Unlock()
}

func (r *recorder) wait(t *testing.T, typ api.EventType, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	for {
		select {
		case e := <-r.got:
			if e.Type == typ {
				return time.Since(start)
			}
		case <-deadline:
			t.Fatalf("no %s within %s", typ, within)
		}
	}
}

type fakeChecker struct {
	mu   sync.Mutex
	fail map[string]bool
	// failed counts the checks that failed, by member.
	failed map[string]int
}

func (f *fakeChecker) Check(ctx context.Context, m api.Member, secret string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[m.Name] || secret == "" {
		if f.failed == nil {
			f.failed = map[string]int{}
		}
		f.failed[m.Name]++
		return errors.New("down")
	}
	return nil
}

func (f *fakeChecker) failures(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed[name]
}

func (f *fakeChecker) set(name string, fail bool) {
	f.mu.Lock()
	f.fail[name] = fail
	f.mu.Unlock()
}

func openTest(t *testing.T, path string, interval time.Duration, ch Checker, rec *recorder) *Members {
	t.Helper()
	m, err := OpenMembers(MembersOptions{
		Path: path, Interval: interval, Misses: 3, Checker: ch,
		Main:    api.ClusterHost{HostConfig: api.HostConfig{Name: "main", IP: "10.0.0.1", IsMainHost: true, CPUs: 1, MemoryMB: 1}, Fingerprint: fpA},
		Publish: rec.publish, Count: rec.setCount,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestJoinConflictsAndSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kvm-compose-config.json")
	rec := newRecorder()
	m := openTest(t, path, time.Hour, &fakeChecker{fail: map[string]bool{}}, rec)

	ans, err := m.Join(joinReq("c1", fpB), "")
	if err != nil || len(ans.Secret) < 32 || ans.Fingerprint != fpA {
		t.Fatalf("join: %+v %v", ans, err)
	}
	rec.wait(t, api.EventMemberJoined, time.Second)
	for name, tc := range map[string]struct {
		req  api.JoinRequest
		peer string
		want error
	}{
		"name of a live member, other certificate": {joinReq("c1", fpA), "", api.ErrNameTaken},
		"the main's own name":                      {joinReq("main", fpB), "", api.ErrConflict},
		"client certificate is not the named one":  {joinReq("c2", fpB), fpA, api.ErrBadRequest},
		"bad fingerprint":                          {joinReq("c2", "sha256:12"), "", api.ErrBadRequest},
	} {
		if _, err := m.Join(tc.req, tc.peer); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if !m.Authenticate("c1", ans.Secret, "") || !m.Authenticate("c1", ans.Secret, fpB) {
		t.Error("the member's secret is refused")
	}
	if m.Authenticate("c1", ans.Secret, fpA) || m.Authenticate("c1", "x", "") || m.Authenticate("c2", ans.Secret, "") {
		t.Error("a wrong secret, certificate or name is accepted")
	}
	again, err := m.Join(joinReq("c1", fpB), fpB)
	if err != nil || again.Secret == ans.Secret {
		t.Fatalf("re-join with the same certificate: %+v %v", again, err)
	}
	if m.Authenticate("c1", ans.Secret, "") {
		t.Error("the old secret still works after a re-join")
	}

	// The file holds the secret (0600), the API's view does not.
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cluster config: %v %v", st, err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), again.Secret) {
		t.Error("the file does not hold the member secret")
	}
	view, _ := json.Marshal(m.Config())
	if strings.Contains(string(view), again.Secret) {
		t.Error("Config leaks the member secret")
	}
	if c := m.Config(); len(c.Hosts) != 2 || !c.Hosts[0].IsMainHost || c.Hosts[1].Name != "c1" {
		t.Errorf("config: %+v", c)
	}

	// A restart of the main keeps the members and their secrets.
	m.Close()
	m2 := openTest(t, path, time.Hour, &fakeChecker{fail: map[string]bool{}}, newRecorder())
	if !m2.Authenticate("c1", again.Secret, "") {
		t.Error("after a restart the member's secret is refused")
	}
	if err := m2.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Member("c1"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("after remove: %v", err)
	}
}

func TestMissedHeartbeatsRemoveTheMember(t *testing.T) {
	const interval = 100 * time.Millisecond
	path := filepath.Join(t.TempDir(), "kvm-compose-config.json")
	rec := newRecorder()
	ch := &fakeChecker{fail: map[string]bool{}}
	m := openTest(t, path, interval, ch, rec)
	if _, err := m.Join(joinReq("c1", fpB), ""); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, api.EventMemberJoined, time.Second)
	// Heartbeats go on: a new one comes after this mark (however late its
	// timer on a loaded machine), and none is missed.
	mark := time.Now()
	for deadline := time.Now().Add(50 * interval); ; time.Sleep(interval / 4) {
		mb, err := m.Member("c1")
		if err != nil || mb.Misses != 0 {
			t.Fatalf("a healthy member: %+v %v", mb, err)
		}
		if mb.LastHeartbeat != nil && mb.LastHeartbeat.After(mark) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a healthy member had no heartbeat in %s: %+v", 50*interval, mb)
		}
	}
	rec.mu.Lock()
	if rec.count != 2 {
		t.Errorf("count %d, want 2", rec.count)
	}
	rec.mu.Unlock()

	ch.set("c1", true)
	took := rec.wait(t, api.EventMemberLost, 50*interval)
	// Lost at its third failed check, and no sooner than the checks' two
	// intervals apart allow; how late timers fire on a loaded machine is
	// no business of this test.
	if n := ch.failures("c1"); n != 3 {
		t.Errorf("lost after %d failed checks, want 3", n)
	}
	if took < 2*interval {
		t.Errorf("lost after %s, less than the 2 intervals between 3 checks", took)
	}
	if _, err := m.Member("c1"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("lost member still listed: %v", err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), `"c1"`) {
		t.Error("lost member still in kvm-compose-config.json")
	}
	rec.mu.Lock()
	if rec.count != 1 {
		t.Errorf("count %d after the loss, want 1", rec.count)
	}
	rec.mu.Unlock()
}

// A hung member costs one timeout per beat, never a blocked timer.
func TestHungMemberTimesOut(t *testing.T) {
	const interval = 40 * time.Millisecond
	rec := newRecorder()
	hung := CheckerFunc(func(ctx context.Context, m api.Member, secret string) error {
		<-ctx.Done()
		return ctx.Err()
	})
	m := openTest(t, filepath.Join(t.TempDir(), "c.json"), interval, hung, rec)
	if _, err := m.Join(joinReq("c1", fpB), ""); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, api.EventMemberJoined, time.Second)
	rec.wait(t, api.EventMemberLost, 10*interval)
}
