package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// MemberFile is config/member.json on a client (0600): how to reach the
// main, the member secret, and the cluster token for re-joining by itself.
type MemberFile struct {
	Name            string    `json:"name"`
	MainURL         string    `json:"main_url"`
	MainFingerprint string    `json:"main_fingerprint"`
	ClusterToken    string    `json:"cluster_token"`
	Secret          string    `json:"secret,omitempty"`
	JoinedAt        time.Time `json:"joined_at,omitzero"`
	// OVN is where this host's ovn-controller joins the main's OVN, when
	// the main's network backend is ovn.
	OVN *api.OVNJoin `json:"ovn,omitempty"`
}

// LoadMemberFile reads config/member.json.
func LoadMemberFile(path string) (MemberFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return MemberFile{}, err
	}
	var m MemberFile
	if err := json.Unmarshal(data, &m); err != nil {
		return MemberFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// FollowerOptions configure a client's side of the cluster.
type FollowerOptions struct {
	// Path is config/member.json.
	Path string
	// Main is how to reach the main; Secret is ignored (it comes from the
	// file or from a join).
	Main MemberFile
	// Own is this host's identity: its fingerprint joins, its certificate
	// is the TLS client certificate on every call to the main.
	Own tlsid.Identity
	// Host is this host's host.json; URL its agent API.
	Host     api.HostConfig
	URL      string
	Interval time.Duration
	Misses   int
	Log      *slog.Logger
}

// Follower is a client host's membership: it joins, checks the main every
// interval (GET /api/cluster/{name}) and re-joins by itself when the main
// answers 404 (it was removed, or the main lost it).
type Follower struct {
	opts FollowerOptions
	http *http.Client

	mu     sync.Mutex
	state  MemberFile
	misses int
}

// ErrJoin: the main refused the join or could not be reached.
var ErrJoin = errors.New("cannot join the main")

// NewFollower reads member.json when it exists and belongs to the same
// main; otherwise the follower starts unjoined.
func NewFollower(opts FollowerOptions) (*Follower, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	fp, err := tlsid.ParseFingerprint(opts.Main.MainFingerprint)
	if err != nil {
		return nil, fmt.Errorf("main fingerprint: %w", err)
	}
	u, err := url.Parse(opts.Main.MainURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("main URL %q: want https://host:port", opts.Main.MainURL)
	}
	opts.Main.MainFingerprint, opts.Main.MainURL = fp, strings.TrimRight(opts.Main.MainURL, "/")
	opts.Main.Name = opts.Host.Name
	f := &Follower{opts: opts, http: pinnedClient(fp, &opts.Own.Certificate), state: opts.Main}
	f.state.Secret = ""
	if saved, err := LoadMemberFile(opts.Path); err == nil &&
		saved.MainURL == opts.Main.MainURL && saved.MainFingerprint == fp && saved.Name == opts.Host.Name {
		f.state.Secret, f.state.JoinedAt, f.state.OVN = saved.Secret, saved.JoinedAt, saved.OVN
		if f.state.ClusterToken == "" {
			f.state.ClusterToken = saved.ClusterToken
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return f, nil
}

// Joined reports whether the follower holds a member secret.
func (f *Follower) Joined() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Secret != ""
}

// State is the member file as it is now.
func (f *Follower) State() MemberFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// Authenticate reports whether a call to this host's agent API comes from
// the main: the member secret, and (when the call presented a client
// certificate, peer non-empty) the main's pinned certificate.
func (f *Follower) Authenticate(secret, peer string) bool {
	f.mu.Lock()
	want, pin := f.state.Secret, f.state.MainFingerprint
	f.mu.Unlock()
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(want))
	return want != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1 && (peer == "" || tlsid.Equal(peer, pin))
}

// joinRetry is how long a join told to come back later (429) waits.
var joinRetry = 3 * time.Second

// Join POSTs /api/cluster with the cluster token, over TLS pinned to the
// main's fingerprint, and saves the member secret in member.json.
func (f *Follower) Join(ctx context.Context) error {
	f.mu.Lock()
	st := f.state
	f.mu.Unlock()
	if st.ClusterToken == "" {
		return fmt.Errorf("%w: no cluster token: join with --join TOKEN or --token-file", ErrJoin)
	}
	req := api.JoinRequest{Name: f.opts.Host.Name, Host: f.opts.Host, Fingerprint: f.opts.Own.Fingerprint, URL: f.opts.URL}
	if f.opts.Own.Leaf != nil {
		req.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.opts.Own.Leaf.Raw}))
	}
	var ans api.JoinAnswer
	err := call(ctx, f.http, http.MethodPost, st.MainURL+"/api/cluster", st.ClusterToken, req, &ans)
	// The main takes new hosts at a bounded rate: too many at once are
	// told to come back (429), which this one does while ctx lasts.
	for statusOf(err) == http.StatusTooManyRequests {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w at %s: %w", ErrJoin, st.MainURL, err)
		case <-time.After(joinRetry):
		}
		err = call(ctx, f.http, http.MethodPost, st.MainURL+"/api/cluster", st.ClusterToken, req, &ans)
	}
	switch {
	case errors.Is(err, tlsid.ErrFingerprintMismatch):
		return fmt.Errorf("%w at %s: %w; the main is not the one the join token names (or its certificate changed): get a new join token on the main", ErrJoin, st.MainURL, err)
	case statusOf(err) == http.StatusUnauthorized:
		return fmt.Errorf("%w at %s: the main refused the cluster token: get a new join token on the main", ErrJoin, st.MainURL)
	case err != nil:
		return fmt.Errorf("%w at %s: %w", ErrJoin, st.MainURL, err)
	}
	if ans.Secret == "" {
		return fmt.Errorf("%w at %s: the answer holds no member secret", ErrJoin, st.MainURL)
	}
	st.Secret, st.JoinedAt, st.OVN = ans.Secret, time.Now().UTC(), ans.OVN
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(f.opts.Path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("member file: %w", err)
	}
	f.mu.Lock()
	f.state, f.misses = st, 0
	f.mu.Unlock()
	f.opts.Log.Info("joined the cluster", "main", st.MainURL, "name", st.Name)
	return nil
}

// Check asks the main whether this host is still a member: nil when it is,
// an error of status 404 when the main does not know it.
func (f *Follower) Check(ctx context.Context) error {
	f.mu.Lock()
	st := f.state
	f.mu.Unlock()
	return call(ctx, f.http, http.MethodGet, st.MainURL+"/api/cluster/"+url.PathEscape(st.Name), st.Secret, nil, nil)
}

// Run heart-beats the main until ctx ends: a check every interval (each
// with a timeout shorter than the interval), a re-join when the main says
// it does not know this host (404) or no longer takes its secret (401).
// One timer (time.AfterFunc) drives it, as on the main; Run returns once no
// beat is in flight, so nothing is written after it.
func (f *Follower) Run(ctx context.Context) {
	var (
		mu       sync.Mutex
		timer    *time.Timer
		stopped  bool
		inFlight sync.WaitGroup
		beat     func()
	)
	beat = func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		inFlight.Add(1)
		mu.Unlock()
		defer inFlight.Done()
		started := time.Now()
		f.beatOnce(ctx)
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			timer = time.AfterFunc(max(f.opts.Interval-time.Since(started), 0), beat)
		}
	}
	mu.Lock()
	timer = time.AfterFunc(0, beat)
	mu.Unlock()
	<-ctx.Done()
	mu.Lock()
	stopped = true
	timer.Stop()
	mu.Unlock()
	inFlight.Wait()
}

func (f *Follower) beatOnce(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, f.opts.Interval*3/4)
	defer cancel()
	var err error
	if !f.Joined() {
		err = f.Join(cctx)
	} else if err = f.Check(cctx); statusOf(err) == http.StatusNotFound || statusOf(err) == http.StatusUnauthorized {
		f.opts.Log.Warn("the main does not know this host any more: joining again", "main", f.opts.Main.MainURL, "answer", err)
		err = f.Join(cctx)
	}
	if ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		if f.misses >= f.opts.Misses {
			f.opts.Log.Info("the main answers again", "main", f.opts.Main.MainURL)
		}
		f.misses = 0
		return
	}
	f.misses++
	f.http.CloseIdleConnections() // the next beat starts afresh
	if f.misses == f.opts.Misses {
		f.opts.Log.Warn("the main is unreachable", "main", f.opts.Main.MainURL, "misses", f.misses, "err", err)
	} else {
		f.opts.Log.Debug("heartbeat to the main failed", "misses", f.misses, "err", err)
	}
}
