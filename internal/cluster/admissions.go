package cluster

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// Errors of admissions.
var (
	// ErrTokenSpent: a limited join token whose uses are all taken, or
	// whose lifetime is over, presented by a host it never admitted.
	ErrTokenSpent = api.Categorized(api.ErrConflict, "the join token is spent or expired")
	// ErrForgotten: a host removed for good, joining with a credential
	// older than its removal.
	ErrForgotten = api.Categorized(api.ErrConflict, "this host was removed from the cluster for good")
)

// Admissions are the main's limited join tokens and the hosts removed for
// good, kept in config/join-tokens.json (0600, written crash-safely). A
// limited token admits at most Uses distinct hosts (by certificate) before
// it expires; a host it admitted may join again with it any time (after
// missed heartbeats), until the host is forgotten. A forgotten host (its
// name or its certificate) is refused with any credential made before it
// was forgotten: a new join token, or a new cluster token, lets it in again.
type Admissions struct {
	path string
	now  func() time.Time

	mu sync.Mutex
	f  admissionsFile
}

type admissionsFile struct {
	Tokens    []joinTokenRecord `json:"tokens"`
	Forgotten []forgottenHost   `json:"forgotten,omitempty"`
}

// joinTokenRecord is a limited join token; only the hash of its secret is
// kept.
type joinTokenRecord struct {
	ID       string    `json:"id"`
	Hash     string    `json:"sha256"`
	Uses     int       `json:"uses"`
	Created  time.Time `json:"created_at"`
	Expires  time.Time `json:"expires_at"`
	Admitted []string  `json:"admitted,omitempty"` // certificate fingerprints
}

type forgottenHost struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	At          time.Time `json:"at"`
}

// JoinCredential is what a join was let in with: the cluster token, or a
// limited join token (ID set).
type JoinCredential struct {
	ID string
	// Created is when the credential was made: a host forgotten after it
	// is refused with it.
	Created time.Time
}

// IssuedToken is a new limited join token.
type IssuedToken struct {
	ID      string    `json:"id"`
	Secret  string    `json:"token"`
	Uses    int       `json:"uses"`
	Expires time.Time `json:"expires_at"`
}

// OpenAdmissions reads path (absent: no tokens, nobody forgotten).
func OpenAdmissions(path string) (*Admissions, error) {
	a := &Admissions{path: path, now: time.Now}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("join tokens: %w", err)
	}
	if err := json.Unmarshal(data, &a.f); err != nil {
		return nil, fmt.Errorf("join tokens %s: %w", path, err)
	}
	return a, nil
}

// Issue makes a join token that admits at most uses hosts within ttl.
func (a *Admissions) Issue(uses int, ttl time.Duration) (IssuedToken, error) {
	if uses < 1 || ttl <= 0 {
		return IssuedToken{}, fmt.Errorf("%w: a join token needs --uses of at least 1 and a positive --ttl", api.ErrBadRequest)
	}
	secret, err := newSecret()
	if err != nil {
		return IssuedToken{}, err
	}
	sum := sha256.Sum256([]byte(secret))
	now := a.now().UTC()
	rec := joinTokenRecord{ID: hex.EncodeToString(sum[:4]), Hash: hex.EncodeToString(sum[:]), Uses: uses, Created: now, Expires: now.Add(ttl)}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	a.f.Tokens = append(a.f.Tokens, rec)
	if err := a.saveLocked(); err != nil {
		a.f.Tokens = a.f.Tokens[:len(a.f.Tokens)-1]
		return IssuedToken{}, err
	}
	return IssuedToken{ID: rec.ID, Secret: secret, Uses: uses, Expires: rec.Expires}, nil
}

// Credential reports whether secret is a limited join token that may still
// admit someone (a new host before it is spent, or a host it admitted).
func (a *Admissions) Credential(secret string) (JoinCredential, bool) {
	sum := sha256.Sum256([]byte(secret))
	want := hex.EncodeToString(sum[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.f.Tokens {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(want)) == 1 {
			return JoinCredential{ID: t.ID, Created: t.Created}, t.open(a.now()) || len(t.Admitted) > 0
		}
	}
	return JoinCredential{}, false
}

func (t *joinTokenRecord) open(now time.Time) bool {
	return len(t.Admitted) < t.Uses && now.Before(t.Expires)
}

// Admit decides a join of the host name with certificate fp, let in with
// cred: a forgotten host is refused unless cred is newer than its removal;
// a limited token takes one of its uses for a host it did not admit yet.
// The returned undo gives the use back (the join failed after all).
func (a *Admissions) Admit(cred JoinCredential, name, fp string) (undo func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.f.Forgotten {
		if (f.Name == name || tlsid.Equal(f.Fingerprint, fp)) && !cred.Created.After(f.At) {
			return nil, fmt.Errorf("%w: %q was removed on %s; join it with a join token made after that (testbedos-server join-token)", ErrForgotten, name, f.At.Format(time.RFC3339))
		}
	}
	if cred.ID == "" {
		return func() {}, nil
	}
	i := slices.IndexFunc(a.f.Tokens, func(t joinTokenRecord) bool { return t.ID == cred.ID })
	if i < 0 {
		return nil, fmt.Errorf("%w: it was removed", ErrTokenSpent)
	}
	t := &a.f.Tokens[i]
	if slices.ContainsFunc(t.Admitted, func(x string) bool { return tlsid.Equal(x, fp) }) {
		return func() {}, nil
	}
	if !t.open(a.now()) {
		return nil, fmt.Errorf("%w: token %s admitted %d of %d hosts and expires at %s", ErrTokenSpent, t.ID, len(t.Admitted), t.Uses, t.Expires.Format(time.RFC3339))
	}
	t.Admitted = append(t.Admitted, fp)
	if err := a.saveLocked(); err != nil {
		t.Admitted = t.Admitted[:len(t.Admitted)-1]
		return nil, err
	}
	id := t.ID
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if i := slices.IndexFunc(a.f.Tokens, func(t joinTokenRecord) bool { return t.ID == id }); i >= 0 {
			t := &a.f.Tokens[i]
			t.Admitted = slices.DeleteFunc(t.Admitted, func(x string) bool { return x == fp })
			_ = a.saveLocked()
		}
	}, nil
}

// Forget records that the host name with certificate fp is removed for
// good: every token forgets having admitted it, and credentials made
// before now no longer let it in.
func (a *Admissions) Forget(name, fp string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now().UTC()
	for i := range a.f.Tokens {
		a.f.Tokens[i].Admitted = slices.DeleteFunc(a.f.Tokens[i].Admitted, func(x string) bool { return tlsid.Equal(x, fp) })
	}
	a.f.Forgotten = slices.DeleteFunc(a.f.Forgotten, func(f forgottenHost) bool { return f.Name == name })
	a.f.Forgotten = append(a.f.Forgotten, forgottenHost{Name: name, Fingerprint: fp, At: now})
	return a.saveLocked()
}

// pruneLocked drops tokens that expired and admitted nobody.
func (a *Admissions) pruneLocked(now time.Time) {
	a.f.Tokens = slices.DeleteFunc(a.f.Tokens, func(t joinTokenRecord) bool {
		return !now.Before(t.Expires) && len(t.Admitted) == 0
	})
}

func (a *Admissions) saveLocked() error {
	data, err := json.MarshalIndent(a.f, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(a.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("join tokens: %w", err)
	}
	return nil
}
