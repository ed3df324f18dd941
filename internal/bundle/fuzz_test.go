package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
)

// FuzzExtract: whatever the upload, Extract writes nothing outside the
// folder it was given, and never a symlink.
func FuzzExtract(f *testing.F) {
	mj, _ := json.Marshal(api.BundleManifest{Format: api.BundleFormat, Deployment: "x"})
	for _, entries := range [][]*tar.Header{
		{{Name: "project/a", Typeflag: tar.TypeReg, Size: 1}},
		{{Name: "project/../b", Typeflag: tar.TypeReg, Size: 1}},
		{{Name: "project/l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
		{{Name: "logs/x.log", Typeflag: tar.TypeReg, Size: 2}, {Name: "project/d/", Typeflag: tar.TypeDir}},
	} {
		var b bytes.Buffer
		gz := gzip.NewWriter(&b)
		tw := tar.NewWriter(gz)
		tw.WriteHeader(&tar.Header{Name: ManifestName, Typeflag: tar.TypeReg, Size: int64(len(mj)), Mode: 0o644})
		tw.Write(mj)
		for _, h := range entries {
			tw.WriteHeader(h)
			if h.Size > 0 {
				tw.Write(make([]byte, h.Size))
			}
		}
		tw.Close()
		gz.Close()
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "p")
		os.Mkdir(dir, 0o755)
		Extract(bytes.NewReader(data), dir, Limits{MaxEntries: 50, MaxBytes: 1 << 20, MaxRatio: 200, Slack: 1 << 16})
		filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if p != parent && p != dir && !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("%s was written outside %s", p, dir)
			}
			if d.Type()&fs.ModeSymlink != 0 {
				t.Fatalf("%s is a symlink", p)
			}
			return nil
		})
	})
}
