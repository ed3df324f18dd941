package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
)

// upstream is a file server whose content and modification time a test
// changes, counting GETs; cut makes the next GET stop after that many bytes.
type upstream struct {
	mu     sync.Mutex
	data   []byte
	mod    time.Time
	gets   int
	ranges int
	cut    int
	srv    *httptest.Server
}

func newUpstream(t *testing.T, data []byte) *upstream {
	u := &upstream{data: data, mod: time.Now().Add(-time.Hour).Truncate(time.Second)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		data, mod, cut := u.data, u.mod, u.cut
		if r.Method == http.MethodGet {
			u.gets++
			if r.Header.Get("Range") != "" {
				u.ranges++
			}
			u.cut = 0
		}
		u.mu.Unlock()
		if cut > 0 {
			w.Header().Set("Content-Length", "999999")
			w.Header().Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:cut])
			return
		}
		http.ServeContent(w, r, "img", mod, bytes.NewReader(data))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(data []byte) {
	u.mu.Lock()
	u.data, u.mod = data, u.mod.Add(time.Minute)
	u.mu.Unlock()
}

func (u *upstream) counts() (int, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets, u.ranges
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func newStore(t *testing.T) *Store {
	d := t.TempDir()
	return New(Options{Dir: filepath.Join(d, "cache"), Legacy: filepath.Join(d, "images"), DisksDir: filepath.Join(d, "disks")})
}

func TestResolveDownloadsOnceAndNoticesChange(t *testing.T) {
	ctx := context.Background()
	up := newUpstream(t, bytes.Repeat([]byte("a"), 100000))
	s := newStore(t)
	src := Source{URL: up.srv.URL + "/debian-12.qcow2"}
	e, err := s.Resolve(ctx, src, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "debian-12" || e.SHA256 != sum(up.data) || e.Size != 100000 {
		t.Fatalf("entry %+v", e)
	}
	data, _ := os.ReadFile(s.BlobPath(e.SHA256))
	if !bytes.Equal(data, up.data) {
		t.Fatal("blob differs")
	}
	if _, err := s.Resolve(ctx, src, t.Logf); err != nil {
		t.Fatal(err)
	}
	if g, _ := up.counts(); g != 1 {
		t.Fatalf("GETs = %d after a second resolve, want 1 (cached)", g)
	}
	// A rebuilt image at the same URL is fetched again.
	up.set(bytes.Repeat([]byte("b"), 90000))
	e2, err := s.Resolve(ctx, src, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if e2.SHA256 != sum(up.data) {
		t.Fatalf("changed upstream not noticed: %s", e2.SHA256)
	}
	// Upstream gone: the cached copy is used.
	up.srv.Close()
	if e3, err := s.Resolve(ctx, src, t.Logf); err != nil || e3.SHA256 != e2.SHA256 {
		t.Fatalf("offline with a cached copy: %+v %v", e3, err)
	}
}

func TestResolveChecksSHA256(t *testing.T) {
	ctx := context.Background()
	up := newUpstream(t, []byte("image content"))
	s := newStore(t)
	_, err := s.Resolve(ctx, Source{URL: up.srv.URL + "/x.img", SHA256: strings.Repeat("0", 64)}, t.Logf)
	if !errors.Is(err, ErrDigest) || !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), sum(up.data)) {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.Resolve(ctx, Source{URL: up.srv.URL + "/x.img", SHA256: strings.ToUpper(sum(up.data))}, t.Logf); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(ctx); len(l) != 1 {
		t.Fatalf("list %+v", l)
	}
}

func TestDownloadFailureNamesRemedies(t *testing.T) {
	s := newStore(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := s.Resolve(context.Background(), Source{URL: srv.URL + "/jammy.img"}, t.Logf)
	msg := err.Error()
	for _, want := range []string{srv.URL + "/jammy.img", "kvm-compose image import jammy FILE", filepath.Join(s.opts.Legacy, "jammy.img")} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestResumeAfterBrokenTransfer(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 20000)
	up := newUpstream(t, data)
	up.cut = 50000
	s := newStore(t)
	src := Source{URL: up.srv.URL + "/r.img"}
	if _, err := s.Resolve(ctx, src, t.Logf); err == nil || !strings.Contains(err.Error(), "resumes") {
		t.Fatalf("broken transfer: %v", err)
	}
	e, err := s.Resolve(ctx, src, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if _, r := up.counts(); r != 1 || e.SHA256 != sum(data) {
		t.Fatalf("ranges %d, sha %s", r, e.SHA256)
	}
}

func TestImportLegacyListRemove(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// Offline: the original's <data>/images/<name>.img.
	os.MkdirAll(s.opts.Legacy, 0o755)
	os.WriteFile(filepath.Join(s.opts.Legacy, "ubuntu_22_04.img"), []byte("legacy"), 0o644)
	e, err := s.Resolve(ctx, Source{Name: "ubuntu_22_04", URL: "http://127.0.0.1:1/none.img"}, t.Logf)
	if err != nil || e.SHA256 != sum([]byte("legacy")) {
		t.Fatalf("legacy: %+v %v", e, err)
	}
	// Import under the name a URL-only guest looks for: no download.
	if _, err := s.Import(ctx, "none", strings.NewReader("imported"), ""); err != nil {
		t.Fatal(err)
	}
	e, err = s.Resolve(ctx, Source{URL: "http://127.0.0.1:1/none.img"}, t.Logf)
	if err != nil || e.SHA256 != sum([]byte("imported")) {
		t.Fatalf("imported: %+v %v", e, err)
	}
	if _, err := s.Import(ctx, "../x", strings.NewReader(""), ""); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("bad name: %v", err)
	}
	// A deployment's disk backed by the image holds it.
	disk := filepath.Join(s.opts.DisksDir, "lab1", "vm1.qcow2")
	os.MkdirAll(filepath.Dir(disk), 0o755)
	writeQcow2(t, disk, s.BlobPath(e.SHA256))
	l, _ := s.List(ctx)
	if len(l) != 2 || l[0].Name != "none" || len(l[0].UsedBy) != 1 || l[0].UsedBy[0] != "lab1" {
		t.Fatalf("list %+v", l)
	}
	if err := s.Remove(ctx, "none"); !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "lab1") {
		t.Fatalf("remove while used: %v", err)
	}
	os.Remove(disk)
	if err := s.Remove(ctx, "none"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.BlobPath(e.SHA256)); !os.IsNotExist(err) {
		t.Fatalf("blob left: %v", err)
	}
	if err := s.Remove(ctx, "none"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}
}

// writeQcow2 writes a qcow2 header naming backing as its backing file.
func writeQcow2(t *testing.T, path, backing string) {
	hdr := make([]byte, 104)
	copy(hdr, "QFI\xfb")
	binary.BigEndian.PutUint32(hdr[4:], 3)
	binary.BigEndian.PutUint64(hdr[8:], 104)
	binary.BigEndian.PutUint32(hdr[16:], uint32(len(backing)))
	if err := os.WriteFile(path, append(hdr, backing...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckReadable(t *testing.T) {
	d := t.TempDir()
	private := filepath.Join(d, "root")
	os.Mkdir(private, 0o700)
	f := filepath.Join(private, "img")
	os.WriteFile(f, nil, 0o644)
	err := CheckReadable(f)
	if err == nil || !strings.Contains(err.Error(), "chmod o+x "+private) {
		t.Fatalf("err = %v", err)
	}
	os.Chmod(private, 0o755)
	os.Chmod(d, 0o755)
	if err := CheckReadable(f); err != nil && !strings.Contains(err.Error(), "/tmp") {
		t.Fatalf("err = %v", err)
	}
}

// TestAdoptPushedImage: a file whose sha256 is known (pushed by the main
// and verified on arrival) becomes a named image without a copy when it
// is on the cache's file system; adopting it again changes nothing.
func TestAdoptPushedImage(t *testing.T) {
	s := newStore(t)
	data := []byte("pushed image")
	path := filepath.Join(t.TempDir(), "pushed")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := s.Adopt(context.Background(), "debian-12", path, sum(data))
	if err != nil || e.SHA256 != sum(data) || e.Size != int64(len(data)) {
		t.Fatalf("adopt: %+v, %v", e, err)
	}
	got, ok, err := s.Entry("debian-12")
	if err != nil || !ok || got.SHA256 != sum(data) {
		t.Fatalf("entry: %+v %v %v", got, ok, err)
	}
	if blob, err := os.ReadFile(s.BlobPath(sum(data))); err != nil || string(blob) != string(data) {
		t.Errorf("blob: %q, %v", blob, err)
	}
	again, err := s.Adopt(context.Background(), "debian-12", path, sum(data))
	if err != nil || !again.Fetched.Equal(e.Fetched) {
		t.Errorf("adopting again: %+v, %v; want the entry as it was", again, err)
	}
	if _, err := s.Adopt(context.Background(), "../x", path, sum(data)); err == nil {
		t.Error("an invalid name was adopted")
	}
}
