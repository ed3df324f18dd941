package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte("machines: []\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts", "setup.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.MkdirAll(filepath.Join(dir, "artefacts"), 0o755)
	os.WriteFile(filepath.Join(dir, "artefacts", "state.json"), []byte("{}"), 0o644)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("not yours"), 0o600)
	os.Symlink(secret, filepath.Join(dir, "leak"))
	os.Symlink("/etc", filepath.Join(dir, "etc"))
	return dir
}

func TestRoundTrip(t *testing.T) {
	src := project(t)
	logFile := filepath.Join(t.TempDir(), "a.log")
	os.WriteFile(logFile, []byte("line 1\nline 2\n"), 0o644)
	record := []byte(`{"hosts":{"main":{"guests":{"web":{"impairments":{"eth0":{"up":true,"delay_ms":20}}}}}}}`)
	var buf bytes.Buffer
	err := Write(context.Background(), &buf, Source{
		Deployment: api.Deployment{Name: "lab", ProjectLocation: src, State: api.StateIsUp},
		StateJSON:  []byte(`{"version":1}`), Record: record,
		Logs: api.LogIndex{"u1": {LogPath: logFile}, "u2": {LogPath: filepath.Join(t.TempDir(), "pruned.log")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	m, n, err := Extract(bytes.NewReader(buf.Bytes()), dst, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || m.Deployment != "lab" || len(m.Logs) != 2 {
		t.Fatalf("manifest %+v, %d files", m, n)
	}
	if strings.Join(m.Skipped, ",") != "etc,leak" {
		t.Errorf("skipped %v, want the two symlinks", m.Skipped)
	}
	for p, want := range map[string]string{
		"kvm-compose.yaml":         "machines: []\n",
		"scripts/setup.sh":         "#!/bin/sh\necho hi\n",
		".bundle/state.json":       `{"version":1}`,
		".bundle/logs/u1.log":      "line 1\nline 2\n",
		".bundle/deployed.json":    string(record),
		".bundle/manifest.json":    "",
		".bundle/impairments.json": "",
		".bundle/logs/index.json":  "",
	} {
		data, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if want != "" && string(data) != want {
			t.Errorf("%s = %q, want %q", p, data, want)
		}
	}
	for _, p := range []string{"leak", "etc", "artefacts"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("%s was carried into the import", p)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dst, "scripts/setup.sh")); fi == nil || fi.Mode().Perm()&0o100 == 0 {
		t.Error("the setup script lost its exec bit")
	}
}

// tarball makes a bundle of the given entries after a valid manifest.
func tarball(t *testing.T, files []api.BundleFile, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	mj, _ := json.Marshal(api.BundleManifest{Format: api.BundleFormat, Deployment: "x", Files: files})
	tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o644, Size: int64(len(mj)), Typeflag: tar.TypeReg})
	tw.Write(mj)
	for _, h := range entries {
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			tw.Write(make([]byte, h.Size))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestExtractRefuses(t *testing.T) {
	cases := map[string]*tar.Header{
		"dotdot":   {Name: "project/../../escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"absolute": {Name: "/tmp/escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"symlink":  {Name: "project/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		"hardlink": {Name: "project/hard", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		"device":   {Name: "project/dev", Typeflag: tar.TypeChar},
		"unlisted": {Name: "project/extra", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
		"meta":     {Name: "project/.bundle/x", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "p")
			os.Mkdir(dst, 0o755)
			_, _, err := Extract(bytes.NewReader(tarball(t, nil, h)), dst, DefaultLimits)
			if !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("err = %v, want an invalid-bundle error", err)
			}
			if _, err := os.Lstat(filepath.Join(parent, "escape")); err == nil {
				t.Fatal("a file was written outside the project folder")
			}
		})
	}
}

func TestExtractBomb(t *testing.T) {
	// 16 MiB of zeros compress to about 16 KiB: 1000:1.
	big := &tar.Header{Name: "project/zeros", Typeflag: tar.TypeReg, Size: 16 << 20, Mode: 0o644}
	data := tarball(t, []api.BundleFile{{Path: "zeros"}}, big)
	lim := Limits{MaxEntries: 10, MaxBytes: 1 << 40, MaxRatio: 200, Slack: 64 << 10}
	_, _, err := Extract(bytes.NewReader(data), t.TempDir(), lim)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "bomb") {
		t.Fatalf("err = %v, want the ratio bound", err)
	}
	lim = Limits{MaxEntries: 10, MaxBytes: 1 << 20, MaxRatio: 1 << 20}
	if _, _, err = Extract(bytes.NewReader(data), t.TempDir(), lim); !errors.Is(err, ErrLimit) {
		t.Fatalf("err = %v, want the size bound", err)
	}
}

func TestExtractNotBundle(t *testing.T) {
	for _, in := range []string{"", "not gzip"} {
		if _, _, err := Extract(strings.NewReader(in), t.TempDir(), DefaultLimits); !errors.Is(err, ErrNotBundle) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func TestDigests(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	os.WriteFile(disk, []byte("disk"), 0o644)
	st := &topology.State{Guests: []topology.Guest{
		{Name: "vm", Libvirt: &topology.LibvirtSpec{DiskPath: disk}},
		{Name: "c", Docker: &topology.DockerSpec{Image: "busybox:local"}},
	}}
	docker := func(ctx context.Context, ref string) (string, int64, bool, error) {
		return "sha256:abc", 10, ref == "busybox:local", nil
	}
	got := Digests(context.Background(), st, dir, docker)
	if len(got) != 2 || len(got[0].SHA256) != len("sha256:")+64 || !got[0].InProject || got[1].SHA256 != "sha256:abc" {
		t.Fatalf("digests %+v", got)
	}
	none := func(ctx context.Context, ref string) (string, int64, bool, error) { return "", 0, false, nil }
	_, missing := Check(context.Background(), got, dir, t.TempDir(), none)
	if len(missing) != 2 || !strings.Contains(missing[1], "sha256:abc") {
		t.Fatalf("missing %q, want both named with their digests", missing)
	}
}
