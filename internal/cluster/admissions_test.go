package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAdmissions: a token for two hosts admits two and those again, not a
// third, nothing once expired but the hosts it admitted; a forgotten host
// is refused with a credential older than its removal and let in with a
// newer one; everything survives a reopening, and the file keeps only
// hashes.
func TestAdmissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "join-tokens.json")
	a, err := OpenAdmissions(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	if _, err := a.Issue(0, time.Hour); err == nil {
		t.Fatal("a token for no host was made")
	}
	tok, err := a.Issue(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cred, ok := a.Credential(tok.Secret)
	if !ok || cred.ID != tok.ID {
		t.Fatalf("the token is not a credential: %+v %v", cred, ok)
	}
	if _, ok := a.Credential("guess"); ok {
		t.Fatal("a guess is a credential")
	}
	fp := func(b string) string { return "sha256:" + strings.Repeat(b, 32) }
	for _, h := range []string{"aa", "bb", "aa"} {
		if _, err := a.Admit(cred, "h"+h, fp(h)); err != nil {
			t.Fatalf("host %s: %v", h, err)
		}
	}
	undo, err := a.Admit(cred, "hcc", fp("cc"))
	if !errors.Is(err, ErrTokenSpent) || undo != nil {
		t.Fatalf("a third host: %v, want ErrTokenSpent", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := a.Admit(cred, "hbb", fp("bb")); err != nil {
		t.Fatalf("an admitted host after expiry: %v", err)
	}
	if err := a.Forget("hbb", fp("bb")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Admit(cred, "hbb", fp("bb")); !errors.Is(err, ErrForgotten) {
		t.Fatalf("a forgotten host with an older token: %v", err)
	}
	if _, err := a.Admit(JoinCredential{Created: now.Add(-time.Second)}, "hbb", fp("dd")); !errors.Is(err, ErrForgotten) {
		t.Fatalf("a forgotten name with a new certificate and the old cluster token: %v", err)
	}
	now = now.Add(time.Second)
	fresh, _ := a.Issue(1, time.Hour)
	fcred, _ := a.Credential(fresh.Secret)
	undo, err = a.Admit(fcred, "hbb", fp("bb"))
	if err != nil {
		t.Fatalf("a forgotten host with a newer token: %v", err)
	}
	undo() // the join failed after all: the use comes back
	if _, err := a.Admit(fcred, "hee", fp("ee")); err != nil {
		t.Fatalf("the use given back: %v", err)
	}

	b, err := OpenAdmissions(path)
	if err != nil {
		t.Fatal(err)
	}
	b.now = a.now
	if _, err := b.Admit(cred, "haa", fp("aa")); err != nil {
		t.Fatalf("after reopening, an admitted host: %v", err)
	}
	if _, err := b.Admit(cred, "hbb", fp("bb")); !errors.Is(err, ErrForgotten) {
		t.Fatalf("after reopening, a forgotten host: %v", err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), tok.Secret) {
		t.Fatal("the file holds a token's secret")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}
