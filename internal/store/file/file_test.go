package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store"
	"github.com/testbedos/testbedos/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dir := t.TempDir()
		s, err := Open(filepath.Join(dir, "deployments"), filepath.Join(dir, "deployed"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestInvalidNamesTouchNoFile(t *testing.T) {
	dir := t.TempDir()
	deployments, deployed := filepath.Join(dir, "deployments"), filepath.Join(dir, "deployed")
	s, err := Open(deployments, deployed)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"../x", "../../etc/x", "a/b", ".hidden", "x-logs"} {
		s.CreateDeployment(context.Background(), api.Deployment{Name: n})
		s.PutDeployed(context.Background(), n, []byte(`{}`))
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if p != dir && p != deployments && p != deployed {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("invalid names created files: %v", files)
	}
}

func TestReopenKeepsRecordsAndUUIDIndex(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, filepath.Join(dir, "deployed"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CreateDeployment(ctx, api.Deployment{Name: "keep", ProjectLocation: "/p"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLogEntry(ctx, "u1", api.LogEntry{Deployment: "keep", LogPath: "/l"}); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, filepath.Join(dir, "deployed"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s2.LogEntry(ctx, "u1")
	if err != nil || e.LogPath != "/l" {
		t.Fatalf("after reopen LogEntry = %+v, %v", e, err)
	}
	// No temp files are left behind by the writes.
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		if en.Name() != "keep.json" && en.Name() != "keep-logs.json" && en.Name() != "deployed" {
			t.Errorf("unexpected file %s", en.Name())
		}
	}
}
