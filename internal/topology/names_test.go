package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	tests := []struct{ got, want string }{
		{Prefix("quickstart"), "tb" + h("quickstart")[:5]},
		{BridgeName("quickstart", "sw0"), "tb" + h("quickstart")[:5] + "b" + h("quickstart/switch/sw0")[:6]},
		{HostIfName("quickstart", "web", 1), "tb" + h("quickstart")[:5] + "v" + h("quickstart/web/1")[:7]},
		{NamespaceName("lab", "web-1"), "tbos.lab.web-1"},
		{InterfaceName(2), "eth2"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	long := strings.Repeat("x", 63)
	for _, n := range []string{BridgeName(long, long), HostIfName(long, long, 999)} {
		if len(n) > 15 {
			t.Errorf("%q is longer than 15 bytes", n)
		}
	}
	mac := DefaultMAC("quickstart", "web", 0)
	if mac != "02:"+strings.Join([]string{h("quickstart/web/0")[0:2], h("quickstart/web/0")[2:4], h("quickstart/web/0")[4:6], h("quickstart/web/0")[6:8], h("quickstart/web/0")[8:10]}, ":") {
		t.Errorf("DefaultMAC = %s", mac)
	}
	if _, err := parseMAC(mac); err != nil {
		t.Errorf("DefaultMAC %s is not a usable unicast MAC: %v", mac, err)
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	project := t.TempDir()
	path := StatePath(project)
	if path != filepath.Join(project, "artefacts", "state.json") {
		t.Fatalf("StatePath = %s", path)
	}
	if _, err := ReadState(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadState of a missing file = %v, want fs.ErrNotExist", err)
	}
	st, err := Generate(Options{Deployment: "quickstart", ProjectDir: "testdata", File: "quickstart.yaml", Hosts: []Host{{Name: "main", Main: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteState(path, st); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(data), "{\n  \"version\": 1,") {
		t.Fatalf("state.json = %q, %v", data, err)
	}
	back, err := ReadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("read back:\n%+v\nwant:\n%+v", back, st)
	}

	if err := os.WriteFile(path, []byte(`{"version": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(path); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("ReadState of a future version = %v", err)
	}
}
