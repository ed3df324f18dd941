package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// One project folder belongs to one deployment: a second create or
// a PUT naming a held folder, under any spelling, is a 409 naming the holder;
// a PUT is refused unless the deployment is down.
func TestOneFolderOneDeployment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "quickstart")
	link := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(e.project, link); err != nil {
		t.Fatal(err)
	}
	for _, loc := range []string{e.project, e.project + "/", link, filepath.Join(e.project, "..", filepath.Base(e.project))} {
		_, err := e.c.CreateDeployment(ctx, "q2", loc)
		if client.StatusOf(err) != 409 || !strings.Contains(err.Error(), "deployment quickstart") {
			t.Errorf("create q2 at %s: %v, want 409 naming quickstart", loc, err)
		}
	}
	if _, err := e.c.Deployment(ctx, "q2"); client.StatusOf(err) != 404 {
		t.Fatalf("a refused create left a record: %v", err)
	}

	other := filepath.Join(t.TempDir(), "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	if _, err := e.c.CreateDeployment(ctx, "q2", other); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.UpdateDeployment(ctx, "q2", link); client.StatusOf(err) != 409 || !strings.Contains(err.Error(), "deployment quickstart") {
		t.Errorf("PUT q2 onto quickstart's folder: %v, want 409", err)
	}
	// Its own folder again is fine, and stored resolved.
	d, err := e.c.UpdateDeployment(ctx, "quickstart", link)
	if err != nil || d.ProjectLocation != e.project {
		t.Fatalf("PUT quickstart onto its own folder by a symlink: %+v, %v", d, err)
	}

	// Up: the folder cannot change.
	e.exec.open()
	id, err := e.c.Action(ctx, "quickstart", api.ActionRequest{Command: api.Command{Name: api.CmdUp}})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := e.c.Follow(ctx, id, func(string) {}); err != nil || o.ErrorCode != api.ErrorCodeOK {
		t.Fatalf("up: %+v, %v", o, err)
	}
	third := filepath.Join(t.TempDir(), "third")
	os.MkdirAll(third, 0o755)
	os.WriteFile(filepath.Join(third, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	if _, err := e.c.UpdateDeployment(ctx, "quickstart", third); client.StatusOf(err) != 409 || !strings.Contains(err.Error(), "down") {
		t.Errorf("PUT of an up deployment: %v, want 409 saying to run down", err)
	}
}

// Concurrent creates of one folder: exactly one wins.
func TestConcurrentCreatesOfOneFolder(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.c.CreateDeployment(context.Background(), "d"+string(rune('a'+i)), e.project)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case client.StatusOf(err) != 409:
			t.Errorf("create: %v, want 409", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates of one folder succeeded, want 1", ok)
	}
}
