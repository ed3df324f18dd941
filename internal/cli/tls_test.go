package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/tlsid"
)

func TestHTTPSServerIsPinned(t *testing.T) {
	s := startServerTLS(t, config.TLSOn)
	cert, err := tlsid.LoadCertificate(filepath.Join(s.dataDir, "config", "tls", tlsid.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	noSocket := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		name string
		env  map[string]string
		ok   bool
		says string
	}{
		{"the local data folder's certificate", map[string]string{"TESTBEDOS_DATA_DIR": s.dataDir}, true, "NAME"},
		{"TESTBEDOS_SERVER_FINGERPRINT", map[string]string{"TESTBEDOS_DATA_DIR": s.dataDir, "TESTBEDOS_SERVER_FINGERPRINT": tlsid.Fingerprint(cert)}, true, "NAME"},
		{"another fingerprint", map[string]string{"TESTBEDOS_DATA_DIR": s.dataDir, "TESTBEDOS_SERVER_FINGERPRINT": "sha256:" + strings.Repeat("1", 64)}, false, "fingerprint"},
		{"no fingerprint at all", map[string]string{"TESTBEDOS_DATA_DIR": t.TempDir(), "TESTBEDOS_TOKEN": "x"}, false, "TESTBEDOS_SERVER_FINGERPRINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["TESTBEDOS_SOCKET"] = noSocket
			code, out := run(t, "", tc.env, "--server-connection", s.url, "deployment", "list")
			if (code == 0) != tc.ok || !strings.Contains(out, tc.says) {
				t.Errorf("exit %d, want ok=%v and %q in:\n%s", code, tc.ok, tc.says, out)
			}
		})
	}
}
