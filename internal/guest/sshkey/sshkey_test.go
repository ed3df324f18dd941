package sshkey

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/atomicfile"
)

func TestEnsureAndLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "run generate-artefacts") {
		t.Fatalf("Load of nothing: %v", err)
	}
	k, err := Ensure(mustRoot(t, dir), "testbedos-lab")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(k.Path)
	if err != nil || fi.Mode().Perm() != 0o600 || k.Path != filepath.Join(dir, "ssh", "id_ed25519") {
		t.Fatalf("private key %s: %v %v", k.Path, fi, err)
	}
	if !strings.HasPrefix(k.Authorized, "ssh-ed25519 ") || !strings.HasSuffix(k.Authorized, " testbedos-lab") {
		t.Fatalf("authorized line %q", k.Authorized)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "ssh", "id_ed25519.pub"))
	if strings.TrimSpace(string(pub)) != k.Authorized {
		t.Fatalf("public key file %q", pub)
	}
	again, err := Ensure(mustRoot(t, dir), "other")
	if err != nil || again.Authorized != k.Authorized {
		t.Fatalf("Ensure made a new key: %v", err)
	}
	// A damaged key is replaced.
	os.WriteFile(k.Path, []byte("garbage"), 0o600)
	if fresh, err := Ensure(mustRoot(t, dir), "x"); err != nil || fresh.Authorized == k.Authorized {
		t.Fatalf("damaged key kept: %v", err)
	}
}

func mustRoot(t *testing.T, dir string) *atomicfile.Root {
	t.Helper()
	r, err := atomicfile.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
