package libvirt

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/testbedos/testbedos/internal/topology"
)

func TestLinkLocal(t *testing.T) {
	for mac, want := range map[string]string{
		"52:54:00:aa:bb:01": "fe80::5054:ff:feaa:bb01",
		"02:e5:ab:39:43:62": "fe80::e5:abff:fe39:4362",
	} {
		got, err := LinkLocal(mac)
		if err != nil || got.String() != want {
			t.Errorf("LinkLocal(%s) = %v, %v, want %s", mac, got, err, want)
		}
	}
	if _, err := LinkLocal("nope"); err == nil {
		t.Error("a bad MAC gave an address")
	}
	_, g := testState(t)
	if got := sshAddr(g); got != "[fe80::5054:ff:feaa:bb01%tbaaaaabbbbbbb]:22" {
		t.Errorf("sshAddr = %s", got)
	}
}

func TestDefaultOptions(t *testing.T) {
	d := New(Options{})
	if d.opts.Socket != DefaultSocket || d.opts.DomainType != TypeAuto || d.opts.ReadyTimeout != 180*time.Second {
		t.Errorf("defaults = %+v", d.opts)
	}
}

func TestParseSnapshot(t *testing.T) {
	raw := `<domainsnapshot>
  <name>s2</name><description>taken by TestbedOS</description><state>running</state>
  <parent><name>s1</name></parent><creationTime>1795628588</creationTime>
  <memory snapshot='internal'/>
  <disks><disk name='vda' snapshot='internal'/><disk name='hdc' snapshot='no'/></disks>
  <domain type='qemu'><name>x</name></domain>
</domainsnapshot>`
	s, err := parseSnapshot(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "s2" || s.Parent != "s1" || s.State != "running" || !s.Memory || len(s.Disks) != 1 || s.Disks[0] != "vda" || s.Created.Unix() != 1795628588 {
		t.Fatalf("parseSnapshot = %+v", s)
	}
}

func TestNewestKernel(t *testing.T) {
	dir := t.TempDir()
	if newestKernel(dir) != "" {
		t.Fatal("found a kernel in an empty folder")
	}
	for _, v := range []string{"6.1.0-9-amd64", "6.1.0-56-amd64", "5.10.0-30-amd64", "6.1.0-10-amd64"} {
		os.WriteFile(filepath.Join(dir, "vmlinuz-"+v), nil, 0o644)
	}
	if got := filepath.Base(newestKernel(dir)); got != "vmlinuz-6.1.0-56-amd64" {
		t.Fatalf("newest = %s", got)
	}
}

func TestConsoleMarkers(t *testing.T) {
	key1 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyvAZ0ffiRL+2EeQ3LNbhYZOI593Jm0iQE1bSV+qCGe"
	key2 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5w9c3Vb7l5k0b8k9mJj1f3x2d2q2uJ8l0Zb0Xq8pXH"
	out := "boot\r\nTESTBEDOS-GUEST-HOSTKEY " + key1 + "\r\nreboot\nTESTBEDOS-GUEST-HOSTKEY " + key2 + "\n"
	k := consoleHostKey([]byte(out))
	want, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(key2))
	if k == nil || string(k.Marshal()) != string(want.Marshal()) {
		t.Fatalf("the last host key line wins: %v", k)
	}
	if consoleHostKey([]byte("nothing\n")) != nil {
		t.Fatal("a key from nothing")
	}
	if got := consoleTrouble([]byte("a\nTESTBEDOS-GUEST-ERROR insmod virtio_net: x\n")); !strings.HasPrefix(got, "TESTBEDOS-GUEST-ERROR insmod") {
		t.Errorf("consoleTrouble = %q", got)
	}
	if got := consoleTrouble([]byte("[ 1.2] Kernel panic - not syncing: VFS\n")); !strings.Contains(got, "Kernel panic") {
		t.Errorf("consoleTrouble = %q", got)
	}
	if consoleTrouble([]byte("fine\n")) != "" {
		t.Error("trouble in a fine console")
	}
}

// TestCachedImage: one download for concurrent guests, then the cache; a
// failed download leaves nothing that looks cached.
func TestCachedImage(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/img.qcow2":
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte("QFI\xfb rest of a qcow2"))
		case "/raw.img":
			w.Write([]byte("raw bytes"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // QEMU's user reads the cache
	os.Chmod(filepath.Dir(dir), 0o755)
	d := New(Options{ImageCache: filepath.Join(dir, "images")})
	log := &nopLog{}
	spec := &topology.LibvirtSpec{ImageURL: srv.URL + "/img.qcow2"}
	var wg sync.WaitGroup
	paths := make([]string, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, format, err := d.cachedImage(context.Background(), spec, log)
			if err != nil || format != "qcow2" {
				t.Errorf("cachedImage: %v %s", err, format)
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	// HEAD requests check the upstream file; one GET downloads it.
	if hits.Load() != 4 || paths[0] != paths[3] || filepath.Dir(paths[0]) != filepath.Join(dir, "images", "sha256") {
		t.Fatalf("%d requests, files %v", hits.Load(), paths)
	}
	if fi, err := os.Stat(paths[0]); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("cached file: %v %v", fi, err)
	}
	named := &topology.LibvirtSpec{ImageURL: srv.URL + "/raw.img", ImageName: "mine"}
	if p, format, err := d.cachedImage(context.Background(), named, log); err != nil || format != "raw" {
		t.Fatalf("named image: %s %s %v", p, format, err)
	}
	if l, _ := d.images.List(context.Background()); len(l) != 2 || l[0].Name != "img" || l[1].Name != "mine" {
		t.Fatalf("images %+v", l)
	}
	missing := &topology.LibvirtSpec{ImageURL: srv.URL + "/missing.img"}
	if _, _, err := d.cachedImage(context.Background(), missing, log); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "kvm-compose image import missing FILE") {
		t.Fatalf("missing image: %v", err)
	}
	if l, _ := d.images.List(context.Background()); len(l) != 2 {
		t.Fatalf("a failed download is listed: %+v", l)
	}
}

type nopLog struct{}

func (nopLog) Printf(string, ...any)        {}
func (nopLog) Writer(string) io.WriteCloser { return nil }
