package topology

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

const tinyTopology = "machines:\n  - name: a\n    netns: {}\n"

// generateWithin runs Generate on a project and fails the test when it
// does not return within a few seconds (a FIFO read blocks for ever).
func generateWithin(t *testing.T, project string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Generate(Options{Deployment: "d", ProjectDir: project})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Generate did not return within 5 s")
		return nil
	}
}

func TestGenerateReadsTheTopologySafely(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("root:SECRET-LINE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, project string)
		want  error
	}{
		{"symlink out of the project", func(t *testing.T, p string) {
			symlink(t, secret, filepath.Join(p, DefaultFile))
		}, ErrEscapes},
		{"relative symlink out of the project", func(t *testing.T, p string) {
			rel, err := filepath.Rel(p, secret)
			if err != nil {
				t.Fatal(err)
			}
			symlink(t, rel, filepath.Join(p, DefaultFile))
		}, ErrEscapes},
		{"FIFO", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(filepath.Join(p, DefaultFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ErrNotRegular},
		{"folder", func(t *testing.T, p string) {
			if err := os.Mkdir(filepath.Join(p, DefaultFile), 0o755); err != nil {
				t.Fatal(err)
			}
		}, ErrNotRegular},
		{"larger than the limit", func(t *testing.T, p string) {
			f, err := os.Create(filepath.Join(p, DefaultFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(tinyTopology); err != nil {
				t.Fatal(err)
			}
			// Sparse: the size counts, not the disk.
			if err := f.Truncate(MaxTopologyFile + 1); err != nil {
				t.Fatal(err)
			}
		}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := t.TempDir()
			tt.setup(t, project)
			err := generateWithin(t, project)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Generate = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, api.ErrInvalid) {
				t.Errorf("Generate = %v, want an invalid-input error", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error shows the other file: %v", err)
			}
		})
	}
}

func TestGenerateFollowsSymlinksInsideTheProject(t *testing.T) {
	project := t.TempDir()
	if err := os.WriteFile(filepath.Join(project, "real.yaml"), []byte(tinyTopology), 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, "real.yaml", filepath.Join(project, DefaultFile))
	if err := generateWithin(t, project); err != nil {
		t.Fatalf("Generate through a symlink inside the project = %v", err)
	}
	if err := generateWithin(t, t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Generate without a topology = %v, want fs.ErrNotExist", err)
	}
}

func TestReadStateRefusesWhatIsNotAPlainFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := WriteState(good, &State{Version: StateVersion, Deployment: "d"}); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	symlink(t, good, link)
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxStateFile+1); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(good); err != nil {
		t.Fatalf("ReadState = %v", err)
	}
	for path, want := range map[string]error{link: ErrNotRegular, fifo: ErrNotRegular, big: ErrTooLarge} {
		done := make(chan error, 1)
		go func() { _, err := ReadState(path); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, want) {
				t.Errorf("ReadState(%s) = %v, want %v", filepath.Base(path), err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadState(%s) did not return", filepath.Base(path))
		}
	}
}
