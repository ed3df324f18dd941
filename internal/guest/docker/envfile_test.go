package docker

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/testbedos/testbedos/internal/guest"
)

// An env_file far over the bound is refused without being read whole:
// a (sparse) file of the project folder must not make the daemon allocate
// its size.
func TestReadEnvFileHugeIsNotReadWhole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "env")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 * maxEnvFile); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = readEnvFile(context.Background(), guest.ProjectFiles{Project: filepath.Dir(p)}, p, map[string]string{})
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a 64 MiB env_file was accepted")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8*maxEnvFile {
		t.Fatalf("refusing a %d-byte env_file allocated %d bytes", 64*maxEnvFile, got)
	}
}
