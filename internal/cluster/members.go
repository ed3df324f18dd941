package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// Checker asks a member whether it is alive (GET /api/agent/health over
// TLS pinned to m.Fingerprint, with the member secret). It must honour ctx.
type Checker interface {
	Check(ctx context.Context, m api.Member, secret string) error
}

// forgetter is a Checker that keeps something per member (a connection)
// to drop when the member goes.
type forgetter interface{ Forget(m api.Member) }

// CheckerFunc is a Checker made of a function.
type CheckerFunc func(ctx context.Context, m api.Member, secret string) error

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context, m api.Member, secret string) error {
	return f(ctx, m, secret)
}

// MembersOptions configure the main's membership.
type MembersOptions struct {
	// Path is config/kvm-compose-config.json.
	Path string
	// Main is the main host's entry (its host.json and fingerprint).
	Main     api.ClusterHost
	Interval time.Duration
	Misses   int
	Checker  Checker
	// Publish, when set, receives member-joined, -lost and -left.
	Publish func(api.Event)
	// Count, when set, is told the number of hosts (the main included)
	// whenever it changes.
	Count func(int)
	Log   *slog.Logger
}

// Members is the main's view of the cluster: the members of
// kvm-compose-config.json, each heart-beaten by a timer of its own (Nomad's
// time.AfterFunc pattern), removed after Misses misses in a row.
type Members struct {
	opts MembersOptions
	ctx  context.Context // ends at Close: cancels checks in flight
	stop context.CancelFunc

	mu      sync.Mutex
	main    api.ClusterHost
	members map[string]*member
	closed  bool
}

// member is one client with its heartbeat state.
type member struct {
	rec    record
	last   *time.Time
	misses int
	timer  *time.Timer
}

// record is a member as kvm-compose-config.json holds it: the secret stays
// in the file (0600) and never leaves through the API.
type record struct {
	api.ClusterHost
	Secret string `json:"secret,omitempty"`
}

type clusterFile struct {
	Hosts []record `json:"hosts"`
}

// Peer is what the main needs to drive a member: its agent URL, the
// fingerprint its certificate is pinned to and its member secret.
type Peer struct {
	api.Member
	Secret string
}

// Peer returns the member called name with its secret, or false.
func (m *Members) Peer(name string) (Peer, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.members[name]
	if !ok {
		return Peer{}, false
	}
	return Peer{Member: mb.public(), Secret: mb.rec.Secret}, true
}

// PinnedClient speaks HTTPS to a peer whose certificate has fingerprint
// pin, presenting own as the client certificate.
func PinnedClient(pin string, own *tls.Certificate) *http.Client { return pinnedClient(pin, own) }

// OpenMembers reads kvm-compose-config.json (absent: a cluster of the main
// alone), writes it with the main's current entry and starts a heartbeat
// timer per member.
func OpenMembers(opts MembersOptions) (*Members, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 || opts.Misses < 1 || opts.Checker == nil {
		return nil, errors.New("cluster: members need an interval, misses and a checker")
	}
	m := &Members{opts: opts, main: opts.Main, members: map[string]*member{}}
	m.ctx, m.stop = context.WithCancel(context.Background())
	data, err := os.ReadFile(opts.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if err == nil {
		var f clusterFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("cluster config %s: %w", opts.Path, err)
		}
		for _, r := range f.Hosts {
			if r.IsMainHost || r.Name == m.main.Name || r.Secret == "" {
				continue
			}
			m.members[r.Name] = &member{rec: r}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.saveLocked(); err != nil {
		return nil, err
	}
	for _, mb := range m.members {
		m.scheduleLocked(mb)
	}
	m.countLocked()
	return m, nil
}

// Close stops every timer and cancels the checks in flight.
func (m *Members) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.stop()
	for _, mb := range m.members {
		mb.timer.Stop()
	}
}

// SetMain replaces the main's entry (after POST /api/config/host).
func (m *Members) SetMain(h api.HostConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.main.HostConfig = h
	return m.saveLocked()
}

// Config is kvm-compose-config.json without the secrets.
func (m *Members) Config() api.ClusterConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := api.ClusterConfig{Hosts: []api.ClusterHost{m.main}}
	for _, r := range m.recordsLocked() {
		c.Hosts = append(c.Hosts, r.ClusterHost)
	}
	return c
}

// List is every member, by name.
func (m *Members) List() []api.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.Member, 0, len(m.members))
	for _, r := range m.recordsLocked() {
		out = append(out, m.members[r.Name].public())
	}
	return out
}

// Member is one member; ErrUnknownMember when there is none of that name.
func (m *Members) Member(name string) (api.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.members[name]
	if !ok {
		return api.Member{}, fmt.Errorf("%w %q", api.ErrUnknownMember, name)
	}
	return mb.public(), nil
}

// Knows reports whether name is a live member with the certificate fp.
func (m *Members) Knows(name, fp string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.members[name]
	return ok && tlsid.Equal(mb.rec.Fingerprint, fp)
}

// Count is the number of members (the main not included).
func (m *Members) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.members)
}

// Authenticate reports whether secret is name's member secret and, when
// the call came over TLS with a client certificate (peer non-empty), that
// certificate is the member's pinned one.
func (m *Members) Authenticate(name, secret, peer string) bool {
	m.mu.Lock()
	mb, ok := m.members[name]
	var want, pin string
	if ok {
		want, pin = mb.rec.Secret, mb.rec.Fingerprint
	}
	m.mu.Unlock()
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(want))
	good := ok && subtle.ConstantTimeCompare(a[:], b[:]) == 1
	return good && (peer == "" || tlsid.Equal(peer, pin))
}

// ErrWrongCertificate: a join whose TLS client certificate is not the one
// it names.
var ErrWrongCertificate = api.Categorized(api.ErrBadRequest, "the TLS client certificate is not the one the join names")

// Join adds or re-admits a member and returns its new secret. peer is the
// fingerprint of the TLS client certificate the request came with ("" when
// none). A name held by a member with another certificate is ErrNameTaken:
// a member lost to missed heartbeats is gone, so only a live one holds it.
func (m *Members) Join(req api.JoinRequest, peer string) (api.JoinAnswer, error) {
	if err := req.Validate(); err != nil {
		return api.JoinAnswer{}, err
	}
	fp, err := tlsid.ParseFingerprint(req.Fingerprint)
	if err != nil {
		return api.JoinAnswer{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	if peer != "" && !tlsid.Equal(peer, fp) {
		return api.JoinAnswer{}, fmt.Errorf("%w: it presented %s, the join names %s", ErrWrongCertificate, peer, fp)
	}
	secret, err := newSecret()
	if err != nil {
		return api.JoinAnswer{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return api.JoinAnswer{}, fmt.Errorf("%w: the server is stopping", api.ErrUnavailable)
	}
	if req.Name == m.main.Name {
		return api.JoinAnswer{}, fmt.Errorf("%w: %q is the main's own name; give the client another name in its host.json", api.ErrNameTaken, req.Name)
	}
	old, rejoin := m.members[req.Name]
	if rejoin && !tlsid.Equal(old.rec.Fingerprint, fp) {
		return api.JoinAnswer{}, fmt.Errorf("%w: %q is a live member with certificate %s", api.ErrNameTaken, req.Name, old.rec.Fingerprint)
	}
	now := time.Now().UTC()
	host := req.Host
	host.IsMainHost = false
	mb := &member{rec: record{
		ClusterHost: api.ClusterHost{HostConfig: host, URL: req.URL, Fingerprint: fp, JoinedAt: &now},
		Secret:      secret,
	}, last: &now}
	m.members[req.Name] = mb
	if err := m.saveLocked(); err != nil {
		if rejoin {
			m.members[req.Name] = old
		} else {
			delete(m.members, req.Name)
		}
		return api.JoinAnswer{}, err
	}
	if rejoin {
		old.timer.Stop()
	}
	m.scheduleLocked(mb)
	m.countLocked()
	m.opts.Log.Info("cluster member joined", "member", req.Name, "url", req.URL, "fingerprint", fp, "rejoin", rejoin)
	m.publish(api.EventMemberJoined, req.Name)
	return api.JoinAnswer{Name: req.Name, Secret: secret, Fingerprint: m.main.Fingerprint}, nil
}

// Remove drops a member that leaves (DELETE /api/cluster/{name}).
func (m *Members) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.members[name]
	if !ok {
		return fmt.Errorf("%w %q", api.ErrUnknownMember, name)
	}
	if err := m.dropLocked(mb); err != nil {
		return err
	}
	m.opts.Log.Info("cluster member left", "member", name)
	m.publish(api.EventMemberLeft, name)
	return nil
}

// dropLocked removes mb from the cluster and the file.
func (m *Members) dropLocked(mb *member) error {
	delete(m.members, mb.rec.Name)
	if err := m.saveLocked(); err != nil {
		m.members[mb.rec.Name] = mb
		return err
	}
	mb.timer.Stop()
	if f, ok := m.opts.Checker.(forgetter); ok {
		f.Forget(mb.public())
	}
	m.countLocked()
	return nil
}

// checkTimeout bounds one heartbeat: it ends before the next is due.
func (m *Members) checkTimeout() time.Duration { return m.opts.Interval * 3 / 4 }

func (m *Members) scheduleLocked(mb *member) {
	mb.timer = time.AfterFunc(m.opts.Interval, func() { m.beat(mb) })
}

// beat checks one member, then schedules its next check, or removes it
// after Misses misses in a row. The next check is due one interval after
// this one started, so a member killed just after a check is removed within
// Misses intervals.
func (m *Members) beat(mb *member) {
	started := time.Now()
	m.mu.Lock()
	if m.closed || m.members[mb.rec.Name] != mb {
		m.mu.Unlock()
		return
	}
	pub, secret := mb.public(), mb.rec.Secret
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(m.ctx, m.checkTimeout())
	err := m.opts.Checker.Check(ctx, pub, secret)
	cancel()

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.members[mb.rec.Name] != mb {
		return // closed, left or re-joined meanwhile
	}
	if err == nil {
		now := time.Now().UTC()
		mb.last, mb.misses = &now, 0
	} else {
		mb.misses++
		m.opts.Log.Warn("cluster member missed a heartbeat", "member", mb.rec.Name, "misses", mb.misses, "err", err)
		if mb.misses >= m.opts.Misses {
			if derr := m.dropLocked(mb); derr != nil {
				m.opts.Log.Error("cannot remove a lost cluster member", "member", mb.rec.Name, "err", derr)
			} else {
				m.opts.Log.Warn("cluster member lost", "member", mb.rec.Name, "misses", mb.misses, "last_heartbeat", mb.last)
				m.publish(api.EventMemberLost, mb.rec.Name)
				return
			}
		}
	}
	next := m.opts.Interval - time.Since(started)
	if next < 0 {
		next = 0
	}
	mb.timer = time.AfterFunc(next, func() { m.beat(mb) })
}

func (m *Members) publish(t api.EventType, name string) {
	if m.opts.Publish != nil {
		m.opts.Publish(api.Event{Type: t, Time: time.Now().UTC(), Member: name})
	}
}

func (m *Members) countLocked() {
	if m.opts.Count != nil {
		m.opts.Count(1 + len(m.members))
	}
}

func (m *Members) recordsLocked() []record {
	out := make([]record, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, mb.rec)
	}
	slices.SortFunc(out, func(a, b record) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// saveLocked writes kvm-compose-config.json crash-safely (0600: it holds
// the member secrets).
func (m *Members) saveLocked() error {
	f := clusterFile{Hosts: append([]record{{ClusterHost: m.main}}, m.recordsLocked()...)}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(m.opts.Path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("cluster config: %w", err)
	}
	return nil
}

func (mb *member) public() api.Member {
	out := api.Member{
		Name: mb.rec.Name, Host: mb.rec.HostConfig, URL: mb.rec.URL, Fingerprint: mb.rec.Fingerprint,
		Misses: mb.misses,
	}
	if mb.rec.JoinedAt != nil {
		out.JoinedAt = *mb.rec.JoinedAt
	}
	if mb.last != nil {
		t := *mb.last
		out.LastHeartbeat = &t
	}
	return out
}

// newSecret is 32 random bytes in hex.
func newSecret() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return hex.EncodeToString(raw), nil
}
