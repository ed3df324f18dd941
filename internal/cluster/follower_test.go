package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/tlsid"
)

func newIdentity(t *testing.T, name string) tlsid.Identity {
	t.Helper()
	id, err := tlsid.LoadOrCreate(t.TempDir(), tlsid.DefaultNames(name, nil))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fakeMain is a main's cluster routes over real Members, served over TLS.
func fakeMain(t *testing.T, id tlsid.Identity, m *Members, clusterToken string) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/cluster", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+clusterToken {
			http.Error(w, `{"error":{"code":401,"message":"wrong cluster token"}}`, http.StatusUnauthorized)
			return
		}
		var req api.JoinRequest
		json.NewDecoder(r.Body).Decode(&req)
		ans, err := m.Join(req, tlsid.PeerFingerprint(r.TLS))
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		// As an ovn main does: where to join its OVN (the certificate
		// sent back, for the test to see it arrived).
		ans.OVN = &api.OVNJoin{Southbound: "ssl:10.0.0.1:6642", Certificate: req.Certificate}
		json.NewEncoder(w).Encode(ans)
	})
	mux.HandleFunc("GET /api/cluster/{name}", func(w http.ResponseWriter, r *http.Request) {
		secret := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, err := m.Member(r.PathValue("name")); err != nil {
			http.Error(w, "unknown", 404)
			return
		}
		if !m.Authenticate(r.PathValue("name"), secret, tlsid.PeerFingerprint(r.TLS)) {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("{}"))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = tlsid.ServerConfig(id)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestFollowerJoinsPinnedAndRejoinsAfterRemoval(t *testing.T) {
	mainID, clientID := newIdentity(t, "main"), newIdentity(t, "c1")
	rec := newRecorder()
	members := openTest(t, filepath.Join(t.TempDir(), "cluster.json"), time.Hour, &fakeChecker{fail: map[string]bool{}}, rec)
	srv := fakeMain(t, mainID, members, "ctok")
	dir := t.TempDir()
	opts := FollowerOptions{
		Path: filepath.Join(dir, "member.json"),
		Main: MemberFile{MainURL: srv.URL, MainFingerprint: mainID.Fingerprint, ClusterToken: "ctok"},
		Own:  clientID, Host: joinReq("c1", "").Host, URL: "https://10.0.0.2:3355",
		Interval: 50 * time.Millisecond, Misses: 3,
	}

	// A main with another certificate is refused before anything is sent.
	wrong := opts
	wrong.Main.MainFingerprint = newIdentity(t, "other").Fingerprint
	f, err := NewFollower(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Join(t.Context()); !errors.Is(err, tlsid.ErrFingerprintMismatch) || !errors.Is(err, ErrJoin) {
		t.Fatalf("join of a main with another certificate: %v", err)
	}
	if len(members.List()) != 0 {
		t.Fatal("the main admitted a member that refused it")
	}
	badToken := opts
	badToken.Main.ClusterToken = "nope"
	if f, _ = NewFollower(badToken); f.Join(t.Context()) == nil {
		t.Fatal("a wrong cluster token joined")
	}

	f, err = NewFollower(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Join(t.Context()); err != nil {
		t.Fatal(err)
	}
	mb, err := members.Member("c1")
	if err != nil || mb.Fingerprint != clientID.Fingerprint {
		t.Fatalf("member on the main: %+v %v", mb, err)
	}
	st, err := os.Stat(opts.Path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("member.json: %v %v", st, err)
	}
	if err := f.Check(t.Context()); err != nil {
		t.Fatalf("membership check: %v", err)
	}
	secret := f.State().Secret
	if !f.Authenticate(secret, mainID.Fingerprint) || f.Authenticate(secret, clientID.Fingerprint) || f.Authenticate("x", "") {
		t.Error("Authenticate: the secret from the pinned main only")
	}

	// A restarted follower reads member.json; removed on the main, it joins again.
	f2, err := NewFollower(FollowerOptions{Path: opts.Path, Main: MemberFile{MainURL: srv.URL, MainFingerprint: mainID.Fingerprint},
		Own: clientID, Host: opts.Host, URL: opts.URL, Interval: opts.Interval, Misses: 3})
	if err != nil || !f2.Joined() || f2.State().ClusterToken != "ctok" {
		t.Fatalf("restarted follower: %+v %v", f2.State(), err)
	}
	// The join sent the member's certificate; the answer's OVN is kept
	// in member.json for the next start.
	if o := f2.State().OVN; o == nil || o.Southbound != "ssl:10.0.0.1:6642" || !strings.Contains(o.Certificate, "BEGIN CERTIFICATE") {
		t.Errorf("OVN of the join: %+v", o)
	}
	if err := members.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f2.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := members.Member("c1"); err == nil && f2.State().Secret != secret {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower did not join again after the main removed it")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !members.Authenticate("c1", f2.State().Secret, clientID.Fingerprint) {
		t.Error("the main does not take the secret of the re-join")
	}
	cancel()
	<-done
}

func TestHealthCheckerPinsTheMember(t *testing.T) {
	mainID, clientID := newIdentity(t, "main"), newIdentity(t, "c1")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" || tlsid.PeerFingerprint(r.TLS) != mainID.Fingerprint {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(api.AgentHealth{Name: "c1", Status: "ok"})
	}))
	srv.TLS = tlsid.ServerConfig(clientID)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	hc := NewHealthChecker(&mainID.Certificate)
	m := api.Member{Name: "c1", URL: srv.URL, Fingerprint: clientID.Fingerprint}
	if err := hc.Check(t.Context(), m, "s3cret"); err != nil {
		t.Fatalf("healthy member: %v", err)
	}
	if err := hc.Check(t.Context(), m, "wrong"); statusOf(err) != 401 {
		t.Errorf("wrong secret: %v", err)
	}
	other := m
	other.Fingerprint = mainID.Fingerprint
	if err := hc.Check(t.Context(), other, "s3cret"); !errors.Is(err, tlsid.ErrFingerprintMismatch) {
		t.Errorf("member with another certificate: %v", err)
	}
	renamed := m
	renamed.Name = "c2"
	if err := hc.Check(t.Context(), renamed, "s3cret"); err == nil {
		t.Error("a host answering with another name passed")
	}
}

// TestFollowerComesBackWhenTooManyJoin: a main that takes new hosts at a
// bounded rate answers 429; the follower tries again and joins.
func TestFollowerComesBackWhenTooManyJoin(t *testing.T) {
	defer func(d time.Duration) { joinRetry = d }(joinRetry)
	joinRetry = 10 * time.Millisecond
	mainID, clientID := newIdentity(t, "main"), newIdentity(t, "c1")
	members := openTest(t, filepath.Join(t.TempDir(), "cluster.json"), time.Hour, &fakeChecker{fail: map[string]bool{}}, newRecorder())
	var calls int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			http.Error(w, `{"error":{"code":429,"message":"too many hosts joining"}}`, http.StatusTooManyRequests)
			return
		}
		var req api.JoinRequest
		json.NewDecoder(r.Body).Decode(&req)
		ans, err := members.Join(req, tlsid.PeerFingerprint(r.TLS))
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		json.NewEncoder(w).Encode(ans)
	}))
	srv.TLS = tlsid.ServerConfig(mainID)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f, err := NewFollower(FollowerOptions{
		Path: filepath.Join(t.TempDir(), "member.json"),
		Main: MemberFile{MainURL: srv.URL, MainFingerprint: mainID.Fingerprint, ClusterToken: "ctok"},
		Own:  clientID, Host: joinReq("c1", "").Host, URL: "https://10.0.0.2:3355",
		Interval: time.Hour, Misses: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Join(t.Context()); err != nil || calls != 3 {
		t.Fatalf("join after two 429s: %v after %d calls", err, calls)
	}
}
