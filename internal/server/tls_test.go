package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/tlsid"
)

// serveTLS runs a server whose TCP listener is TLS (TESTBEDOS_TLS=on) on a
// loopback port, and returns it with its https URL.
func serveTLS(t *testing.T) (*Server, string) {
	t.Helper()
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", DB: "file", Auth: true, TLS: config.TLSOn,
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	ls, stop, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return s, "https://" + ls[0].Addr().String()
}

func TestTCPListenerSpeaksTLSWithThePinnedCertificate(t *testing.T) {
	s, url := serveTLS(t)
	cert, err := tlsid.LoadCertificate(filepath.Join(s.cfg.TLSDir(), tlsid.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	fp := tlsid.Fingerprint(cert)
	ctx := context.Background()

	c, err := client.New(url, client.WithFingerprint(fp), client.WithToken(s.token))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.TLS || st.Fingerprint != fp {
		t.Errorf("status: tls %v fingerprint %s, want true and %s", st.TLS, st.Fingerprint, fp)
	}

	for name, opts := range map[string][]client.Option{
		"another fingerprint": {client.WithFingerprint("sha256:" + strings.Repeat("0", 64))},
		"no fingerprint":      nil,
	} {
		c, err := client.New(url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(ctx)
		if !errors.Is(err, client.ErrFingerprint) {
			t.Errorf("%s: %v, want ErrFingerprint", name, err)
		}
	}

	// Plain HTTP gets no API answer.
	resp, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/api/config/status")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "version") {
			t.Errorf("plain HTTP to the TLS listener: %d %s", resp.StatusCode, body)
		}
	}
}
