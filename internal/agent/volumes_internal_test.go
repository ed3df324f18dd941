package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A manifest whose link leads out of the copy, with a file beneath that
// link, is refused: nothing is written outside the guest's volumes folder.
func TestVolumeCopyStaysInside(t *testing.T) {
	data := t.TempDir()
	cache := fileCache{dir: filepath.Join(data, "cache")}
	content := []byte("planted\n")
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])
	if err := cache.put(hash, strings.NewReader(string(content)), 0, int64(len(content))); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	v := volumeFiles{cachedFiles: cachedFiles{cache: cache, work: filepath.Join(data, "work")}, guest: "g1",
		volumes: map[string][]VolumeEntry{"src": {
			{Dir: true, Mode: 0o755},
			{Path: "out", Link: outside, Mode: 0o777},
			{Path: "out/planted", SHA256: hash, Mode: 0o644},
		}}}
	if f, err := v.OpenMount(context.Background(), "src"); err == nil {
		f.Close()
		t.Fatal("a file beneath a link out of the copy was written")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !os.IsNotExist(err) {
		t.Fatalf("a file landed outside the volumes folder: %v", err)
	}

	// The same source without the escape is copied whole.
	v.volumes["src"] = []VolumeEntry{{Dir: true, Mode: 0o755}, {Path: "in", Link: "sub", Mode: 0o777},
		{Path: "sub", Dir: true, Mode: 0o700}, {Path: "sub/f", SHA256: hash, Mode: 0o640}}
	f, err := v.OpenMount(context.Background(), "src")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	root := volumeRoot(v.work, "g1", "src")
	got, err := os.ReadFile(filepath.Join(root, "in", "f"))
	if err != nil || string(got) != string(content) {
		t.Fatalf("copied file through its link: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "sub", "f")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("copied file's mode: %v, %v", fi, err)
	}
}
