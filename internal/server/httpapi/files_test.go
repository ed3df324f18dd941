package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/store/file"
)

// TestProjectFiles edits, uploads, lists and deletes project files through
// the files routes, and checks that no path leaves the project folder.
func TestProjectFiles(t *testing.T) {
	dir := t.TempDir()
	st, err := file.Open(filepath.Join(dir, "deployments"), filepath.Join(dir, "deployed"))
	if err != nil {
		t.Fatal(err)
	}
	project := filepath.Join(dir, "project")
	outside := filepath.Join(dir, "secret")
	os.MkdirAll(project, 0o755)
	os.WriteFile(filepath.Join(project, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	os.WriteFile(outside, []byte("secret\n"), 0o600)
	os.Symlink(outside, filepath.Join(project, "link"))
	os.Symlink(dir, filepath.Join(project, "up"))
	os.Mkdir(filepath.Join(project, ".git"), 0o755)
	os.WriteFile(filepath.Join(project, ".git", "config"), []byte("x"), 0o644)
	if err := st.CreateDeployment(context.Background(), api.Deployment{Name: "lab", ProjectLocation: project, State: api.StateIsDown}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, Deps{Store: st})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/api/deployments/lab/files/"+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := do("GET", "kvm-compose.yaml", ""); code != 200 || body != "machines: []\n" {
		t.Errorf("GET the YAML: %d %q", code, body)
	}
	if code, _ := do("PUT", "kvm-compose.yaml", "machines: [a]\n"); code != 200 {
		t.Errorf("PUT the YAML: %d", code)
	}
	if b, _ := os.ReadFile(filepath.Join(project, "kvm-compose.yaml")); string(b) != "machines: [a]\n" {
		t.Errorf("the YAML on disk: %q", b)
	}
	// A new script in a new folder: created, executable.
	if code, _ := do("PUT", "scripts/setup.sh", "#!/bin/sh\necho hi\n"); code != 201 {
		t.Errorf("PUT a new script: %d", code)
	}
	if info, err := os.Stat(filepath.Join(project, "scripts", "setup.sh")); err != nil || info.Mode().Perm()&0o100 == 0 {
		t.Errorf("the script on disk: %v %v", info, err)
	}
	code, _ := do("GET", "", "")
	if code != 400 {
		t.Errorf("GET of an empty path: %d", code)
	}
	resp, err := http.Get(srv.URL + "/api/deployments/lab/files")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code, body := resp.StatusCode, string(b)
	var list ProjectFiles
	json.Unmarshal([]byte(body), &list)
	var paths []string
	for _, f := range list.Files {
		paths = append(paths, f.Path)
	}
	if code != 200 || strings.Join(paths, " ") != "kvm-compose.yaml scripts/setup.sh" {
		t.Errorf("listing: %d %v (%s)", code, paths, body)
	}
	// No way out of the folder, into hidden files, or onto a symlink.
	for _, tc := range []struct{ method, path string }{
		{"GET", "link"}, {"PUT", "link"}, {"DELETE", "link"},
		{"GET", "up/secret"}, {"PUT", "up/secret"}, {"DELETE", "up/secret"},
		{"GET", "../secret"}, {"PUT", "a/../../secret"}, {"GET", ".git/config"}, {"PUT", ".git/config"},
		{"DELETE", "kvm-compose.yaml"}, {"GET", "nothere"},
	} {
		code, body := do(tc.method, tc.path, "owned\n")
		if code < 400 {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, code, body)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "secret\n" {
		t.Errorf("the file outside was changed: %q", b)
	}
	if code, _ := do("PUT", "big", strings.Repeat("x", maxProjectFile+1)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("PUT over the limit: %d", code)
	}
	if code, _ := do("DELETE", "scripts/setup.sh", ""); code != 204 {
		t.Errorf("DELETE: %d", code)
	}
	if _, err := os.Stat(filepath.Join(project, "scripts", "setup.sh")); err == nil {
		t.Error("the script is still there")
	}
	leftovers, _ := filepath.Glob(filepath.Join(project, "*", ".tmp-*"))
	more, _ := filepath.Glob(filepath.Join(project, ".tmp-*"))
	if len(leftovers)+len(more) > 0 {
		t.Errorf("temporary files left: %v %v", leftovers, more)
	}
}
