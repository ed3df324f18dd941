package store

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckName: every name CheckName accepts is safe as a file name in the
// deployments folder and as part of kernel object names.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"lab", "a", "../x", "a/b", "A", "x-logs", strings.Repeat("a", 64), "a\x00b", ".", "..", "-a", "a_b-c9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if len(name) == 0 || len(name) > 63 || strings.ContainsAny(name, "/.\\\x00 ") || strings.HasSuffix(name, LogsSuffix) {
			t.Fatalf("CheckName accepted %q", name)
		}
		dir := "/data/deployments"
		if p := filepath.Join(dir, name+".json"); filepath.Dir(p) != dir {
			t.Fatalf("%q escapes the folder: %s", name, p)
		}
	})
}
