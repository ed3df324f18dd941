package tlsid_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/tlsid"
)

func TestLoadOrCreateMakesOnceWithPrivateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "tls")
	id, err := tlsid.LoadOrCreate(dir, tlsid.DefaultNames("lab1", net.ParseIP("10.9.8.7")))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, tlsid.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key: %v %v", st, err)
	}
	if err := id.Leaf.VerifyHostname("lab1"); err != nil {
		t.Error(err)
	}
	for _, h := range []string{"10.9.8.7", "127.0.0.1", "::1", "localhost"} {
		if err := id.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("SAN %s: %v", h, err)
		}
	}
	again, err := tlsid.LoadOrCreate(dir, tlsid.DefaultNames("other", nil))
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint != id.Fingerprint {
		t.Errorf("second start made a new certificate: %s, was %s", again.Fingerprint, id.Fingerprint)
	}
	cert, err := tlsid.LoadCertificate(filepath.Join(dir, tlsid.CertFile))
	if err != nil || tlsid.Fingerprint(cert) != id.Fingerprint {
		t.Errorf("LoadCertificate: %v", err)
	}
}

func TestLoadRefusesHalfAnIdentity(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, tlsid.KeyFile), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsid.LoadOrCreate(dir, tlsid.Names{}); err == nil {
		t.Fatal("a key without a certificate was accepted or replaced")
	}
}

func TestParseFingerprint(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	colons := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"sha256:" + hex, "sha256:" + hex, true},
		{hex, "sha256:" + hex, true},
		{colons, "sha256:" + hex, true},
		{"SHA256:" + strings.ToUpper(hex), "sha256:" + hex, true},
		{"sha256:abc", "", false},
		{"", "", false},
		{"sha256:" + strings.Repeat("zz", 32), "", false},
	} {
		got, err := tlsid.ParseFingerprint(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseFingerprint(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, tlsid.ErrBadFingerprint) {
			t.Errorf("%q: error %v is not ErrBadFingerprint", tc.in, err)
		}
	}
}

func identity(t *testing.T, name string) tlsid.Identity {
	t.Helper()
	id, err := tlsid.LoadOrCreate(t.TempDir(), tlsid.DefaultNames(name, nil))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPinnedClientAndServer(t *testing.T) {
	srvID, cliID, other := identity(t, "main"), identity(t, "client"), identity(t, "other")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, tlsid.PeerFingerprint(r.TLS))
	}))
	srv.TLS = tlsid.ServerConfig(srvID)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	get := func(cfg *tls.Config) (string, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	got, err := get(tlsid.ClientConfig(srvID.Fingerprint, &cliID.Certificate))
	if err != nil || got != cliID.Fingerprint {
		t.Errorf("pinned with a client cert: %q %v, want the client's fingerprint %s", got, err, cliID.Fingerprint)
	}
	if got, err := get(tlsid.ClientConfig(srvID.Fingerprint, nil)); err != nil || got != "" {
		t.Errorf("pinned without a client cert: %q %v", got, err)
	}
	_, err = get(tlsid.ClientConfig(other.Fingerprint, nil))
	if !errors.Is(err, tlsid.ErrFingerprintMismatch) {
		t.Errorf("wrong pin: %v, want ErrFingerprintMismatch", err)
	}
}
