package topology

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExamplesValidate generates the state of every example project.
func TestExamplesValidate(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", DefaultFile))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := os.Stat(f); err != nil {
				t.Fatal(err)
			}
			if _, err := Generate(Options{Deployment: filepath.Base(dir), ProjectDir: dir}); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
}
