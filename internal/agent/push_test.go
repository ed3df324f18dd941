package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/topology"
)

// artDriver is a fake driver of a kind that writes artefacts: its Create
// reads them where the main's driver would, in the deployment's folder.
type artDriver struct {
	fakeDriver
	read map[string]string // guest → its domain.xml as Create read it
}

func (a *artDriver) Capabilities() guest.Capabilities { return guest.Capabilities{Artefacts: true} }

func (a *artDriver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dep.WorkDir(), g.Kind, g.Name, "domain.xml"))
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	a.read[g.Name] = string(data)
	a.mu.Unlock()
	return a.fakeDriver.Create(ctx, dep, g, log)
}

// TestArtefactsPushedToClient: a guest of a kind that writes artefacts
// runs on a client: what generate-artefacts wrote on the main for it (its
// folder and the deployment's SSH key, hidden files aside) is pushed and
// installed in the client's folder of the deployment with its modes before
// the client's driver makes the guest; content the client has is not sent
// again.
func TestArtefactsPushedToClient(t *testing.T) {
	drv := &artDriver{fakeDriver: fakeDriver{guests: map[string]bool{}}, read: map[string]string{}}
	data := t.TempDir()
	var puts atomic.Int32
	h := agent.Handler(agent.Options{Name: "c1", DataDir: data, Drivers: guest.NewRegistry(drv)})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	gen := t.TempDir()
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Client: srv.Client(), Generated: gen})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"vm1", "vm2"} {
		os.MkdirAll(filepath.Join(gen, "d1", "netns", g), 0o755)
		write(t, filepath.Join(gen, "d1", "netns", g, "domain.xml"), "<domain>"+g+"</domain>", 0o644)
		write(t, filepath.Join(gen, "d1", "netns", g, "seed.img"), "same seed", 0o644)
		write(t, filepath.Join(gen, "d1", "netns", g, ".pinned"), "hidden", 0o644)
	}
	os.MkdirAll(filepath.Join(gen, "d1", "ssh"), 0o700)
	write(t, filepath.Join(gen, "d1", "ssh", "id_ed25519"), "private key", 0o600)
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := guest.As[guest.ArtefactWriter](proxy); err == nil {
		t.Error("the proxy claims to write artefacts")
	}
	dep := guest.Deployment{Name: "d1", Files: remote.Files(t.TempDir())}
	log := &guesttest.Log{}
	for _, g := range []string{"vm1", "vm2"} {
		if _, err := proxy.Create(context.Background(), dep, &topology.Guest{Name: g, Kind: topology.KindNetns}, log); err != nil {
			t.Fatalf("create %s: %v", g, err)
		}
		if want := "<domain>" + g + "</domain>"; drv.read[g] != want {
			t.Errorf("the client's driver read %q, want %q", drv.read[g], want)
		}
	}
	work := filepath.Join(data, "agent", "work", "d1")
	for rel, mode := range map[string]os.FileMode{"netns/vm1/seed.img": 0o644, "ssh/id_ed25519": 0o600} {
		if fi, err := os.Stat(filepath.Join(work, rel)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s on the client: %v, %v; want mode %v", rel, fi, err, mode)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "netns", "vm1", ".pinned")); err == nil {
		t.Error("a hidden file of the main's folder was sent")
	}
	// Two domain documents, one seed and one key.
	if n := puts.Load(); n != 4 {
		t.Errorf("%d files sent, want 4 (the same content once)", n)
	}
}

// cutProxy forwards TCP connections to target; the first connection is cut
// (both ways) once cut bytes went from the client to target. It counts the
// bytes forwarded to target.
type cutProxy struct {
	ln      net.Listener
	target  string
	cut     int64
	cutDone atomic.Bool
	sent    atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newCutProxy(t *testing.T, target string, cut int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cut: cut}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

func (p *cutProxy) forward(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	limit := int64(-1)
	if p.cutDone.CompareAndSwap(false, true) {
		limit = p.cut
	}
	go func() { io.Copy(c, s); c.Close() }()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		if limit >= 0 && n+int64(k) > limit {
			k = int(limit - n)
		}
		if k > 0 {
			if _, werr := s.Write(buf[:k]); werr != nil {
				return
			}
			n += int64(k)
			p.sent.Add(int64(k))
		}
		if err != nil || (limit >= 0 && n >= limit) {
			return
		}
	}
}

// TestPushResumesAfterBrokenTransfer: the connection of an upload is cut
// halfway; the client keeps what arrived, the main asks how much that is
// and sends only the rest; the file arrives verified, and a second push
// sends nothing.
func TestPushResumesAfterBrokenTransfer(t *testing.T) {
	data := t.TempDir()
	srv := httptest.NewServer(agent.Handler(agent.Options{Name: "c1", DataDir: data, Drivers: guest.NewRegistry(&fakeDriver{guests: map[string]bool{}})}))
	t.Cleanup(srv.Close)
	const size = 8 << 20
	proxy := newCutProxy(t, srv.Listener.Addr().String(), size/2)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: "http://" + proxy.ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	content := make([]byte, size)
	rand.Read(content)
	dir := project(t, nil)
	write(t, filepath.Join(dir, "disk.img"), string(content), 0o644)
	dep := guest.Deployment{Name: "d1", Files: remote.Files(dir)}
	drv, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	g := &topology.Guest{Name: "vm1", Kind: topology.KindNetns, Libvirt: &topology.LibvirtSpec{Kernel: "disk.img"}}
	log := &guesttest.Log{}
	if _, err := drv.Create(context.Background(), dep, g, log); err != nil {
		t.Fatalf("create: %v\n%s", err, log.Text())
	}
	sum := sha256.Sum256(content)
	got, err := os.ReadFile(filepath.Join(data, "cache", "files", hex.EncodeToString(sum[:])))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the client's copy: %d bytes, %v; want the file", len(got), err)
	}
	if left, _ := os.ReadDir(filepath.Join(data, "cache", "files", ".partial")); len(left) != 0 {
		t.Errorf("partial files left: %v", left)
	}
	text := log.Text()
	if !strings.Contains(text, "the transfer broke at") || !strings.Contains(text, "resuming from there") || !strings.Contains(text, "verified by sha256") {
		t.Errorf("the log does not tell the resumed transfer:\n%s", text)
	}
	// Half went before the cut; the rest (with the requests' headers) after.
	if sent := proxy.sent.Load(); sent > size+size/4 {
		t.Errorf("%d bytes went to the client for a %d-byte file: the upload started over", sent, size)
	}
	before := proxy.sent.Load()
	log = &guesttest.Log{}
	if _, err := drv.Create(context.Background(), dep, &topology.Guest{Name: "vm2", Kind: topology.KindNetns, Libvirt: g.Libvirt}, log); err != nil {
		t.Fatal(err)
	}
	if sent := proxy.sent.Load() - before; sent > 64<<10 || !strings.Contains(log.Text(), "already on host c1") {
		t.Errorf("a second push sent %d bytes:\n%s", sent, log.Text())
	}
}

// TestCorruptUploadRefused: content that does not match the sha256 it is
// sent as is refused and not kept, whole or partial.
func TestCorruptUploadRefused(t *testing.T) {
	data := t.TempDir()
	srv := httptest.NewServer(agent.Handler(agent.Options{Name: "c1", DataDir: data}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256([]byte("the real content"))
	url := srv.URL + "/api/agent/files/" + hex.EncodeToString(sum[:])
	req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("the real contenT"))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("corrupt upload: %s, want 400", resp.Status)
	}
	head, err := srv.Client().Head(url)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusNotFound || head.Header.Get("X-Testbedos-Received") != "0" {
		t.Errorf("after a corrupt upload HEAD says %s, received %q; want 404, 0", head.Status, head.Header.Get("X-Testbedos-Received"))
	}
	var files []string
	filepath.Walk(filepath.Join(data, "cache"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("kept after a corrupt upload: %v", files)
	}
}

// TestStalledUploadDropped: an upload that stops sending (its main gone
// without closing the connection) is dropped after the idle time, keeping
// what arrived, so the next upload of the file resumes instead of being
// refused as busy forever.
func TestStalledUploadDropped(t *testing.T) {
	data := t.TempDir()
	srv := httptest.NewServer(agent.Handler(agent.Options{Name: "c1", DataDir: data, UploadIdle: 200 * time.Millisecond}))
	t.Cleanup(srv.Close)
	content := bytes.Repeat([]byte("x"), 1000)
	sum := sha256.Sum256(content)
	path := "/api/agent/files/" + hex.EncodeToString(sum[:])
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: c1\r\nContent-Length: 1000\r\n\r\n%s", path, content[:100])
	var received string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		head, err := srv.Client().Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		head.Body.Close()
		received = head.Header.Get("X-Testbedos-Received")
		if received == "100" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if received != "100" {
		t.Fatalf("the client holds %s bytes of the stalled upload, want 100", received)
	}
	// The stalled upload still holds the file until the idle time ends.
	var status int
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+path, bytes.NewReader(content[100:]))
		req.Header.Set("Content-Range", "bytes 100-999/1000")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if status = resp.StatusCode; status != http.StatusConflict {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != http.StatusCreated {
		t.Fatalf("resuming after the stalled upload: %d, want 201", status)
	}
	if got, err := os.ReadFile(filepath.Join(data, "cache", "files", hex.EncodeToString(sum[:]))); err != nil || !bytes.Equal(got, content) {
		t.Errorf("the file: %d bytes, %v", len(got), err)
	}
}
