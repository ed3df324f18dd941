package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/config"
	"github.com/testbedos/testbedos/internal/gui"
)

// copyDir copies the GUI's templates and static files.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDevModeTemplateEdit: with TESTBEDOS_DEV=1 and TESTBEDOS_DEV_DIR on a
// copy of the source tree, the server shows an edited template on the very
// next request.
func TestDevModeTemplateEdit(t *testing.T) {
	src := gui.SourceDir()
	if src == "" {
		t.Skip("no source tree of internal/gui next to this build")
	}
	dev := t.TempDir()
	for _, d := range []string{"templates", "static"} {
		copyDir(t, filepath.Join(src, d), filepath.Join(dev, d))
	}
	cfg := config.Server{
		DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", DB: "file", Auth: false, Dev: true, DevDir: dev,
		HeartbeatInterval: time.Second, HeartbeatMisses: 3, LogRetention: time.Hour, LogMaxCount: 10,
	}
	s, err := New(context.Background(), Options{Config: cfg, Executor: newGate()})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestHTTP(t, s)
	page := func() string {
		resp, err := http.Get(ts.URL + "/deployments")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if strings.Contains(page(), "hot reload works") {
		t.Fatal("marker before the edit")
	}
	file := filepath.Join(dev, "templates", "deployments.html")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), "<h1>Deployments</h1>", "<h1>Deployments</h1><p>hot reload works</p>", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page(), "hot reload works") {
		t.Fatal("the edited template did not show on the next request")
	}
	// A dev folder without templates stops the server at start, saying why.
	cfg.DevDir = t.TempDir()
	cfg.DataDir = filepath.Join(t.TempDir(), "data2")
	if _, err := New(context.Background(), Options{Config: cfg, Executor: newGate()}); err == nil || !strings.Contains(err.Error(), "TESTBEDOS_DEV_DIR") {
		t.Fatalf("bad dev dir: %v", err)
	}
}
