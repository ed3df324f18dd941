package agent_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/images"
	"github.com/testbedos/testbedos/internal/topology"
)

// specDriver is fakeDriver that keeps the libvirt spec its Create got.
type specDriver struct {
	fakeDriver
	got *topology.LibvirtSpec
}

func (d *specDriver) Create(ctx context.Context, dep guest.Deployment, g *topology.Guest, log actlog.Log) (bool, error) {
	d.got = g.Libvirt
	return d.fakeDriver.Create(ctx, dep, g, log)
}

// TestCloudImagePushedToClient: a guest of a client host that boots a
// cloud image gets the main's cached image pushed (once), kept in the
// client's image cache under its name, and a spec naming it by sha256
// with no URL, so the client's driver never downloads it.
func TestCloudImagePushedToClient(t *testing.T) {
	ctx := context.Background()
	mainImages := images.New(images.Options{Dir: t.TempDir()})
	content := bytes.Repeat([]byte("qcow"), 1<<18)
	img, err := mainImages.Import(ctx, "debian-12", bytes.NewReader(content), "")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	clientImages := images.New(images.Options{Dir: filepath.Join(data, "cache", "images")})
	drv := &specDriver{fakeDriver: fakeDriver{guests: map[string]bool{}}}
	var puts atomic.Int32
	h := agent.Handler(agent.Options{Name: "c1", DataDir: data, Drivers: guest.NewRegistry(drv), Images: clientImages})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Images: mainImages})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	dep := guest.Deployment{Name: "d1", Files: remote.Files(t.TempDir())}
	log := &guesttest.Log{}
	for _, name := range []string{"vm1", "vm2"} {
		g := &topology.Guest{Name: name, Kind: topology.KindNetns, Libvirt: &topology.LibvirtSpec{Boot: topology.BootCloudImage, ImageName: "debian-12", ImageURL: "http://127.0.0.1:9/unreachable.qcow2"}}
		if _, err := proxy.Create(ctx, dep, g, log); err != nil {
			t.Fatalf("create %s: %v\n%s", name, err, log.Text())
		}
	}
	if s := drv.got; s == nil || s.ImageName != "debian-12" || s.ImageURL != "" || s.ImageSHA256 != img.SHA256 {
		t.Errorf("the client's driver got %+v, want the image by name and sha256, no URL", drv.got)
	}
	e, ok, err := clientImages.Entry("debian-12")
	if err != nil || !ok || e.SHA256 != img.SHA256 {
		t.Fatalf("the client's image: %+v %v %v", e, ok, err)
	}
	if got, err := os.ReadFile(clientImages.BlobPath(e.SHA256)); err != nil || !bytes.Equal(got, content) {
		t.Errorf("the client's copy differs: %v", err)
	}
	if n := puts.Load(); n != 1 {
		t.Errorf("%d uploads, want the image once", n)
	}
}

// TestExistingDiskPushedToClient: an existing_disk guest (a linked clone
// over the disk, which is never written) runs on a client with the pushed
// copy as its disk; no deep copy is needed.
func TestExistingDiskPushedToClient(t *testing.T) {
	data := t.TempDir()
	drv := &specDriver{fakeDriver: fakeDriver{guests: map[string]bool{}}}
	srv := httptest.NewServer(agent.Handler(agent.Options{Name: "c1", DataDir: data, Drivers: guest.NewRegistry(drv)}))
	t.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := remote.Driver(topology.KindNetns)
	if err != nil {
		t.Fatal(err)
	}
	dir := project(t, map[string]string{"disk.qcow2": "QFI\xfb a disk"})
	g := &topology.Guest{Name: "vm1", Kind: topology.KindNetns, Libvirt: &topology.LibvirtSpec{Boot: topology.BootExistingDisk, DiskPath: filepath.Join(dir, "disk.qcow2"), DiskFormat: "qcow2"}}
	if _, err := proxy.Create(context.Background(), guest.Deployment{Name: "d1", Files: remote.Files(dir)}, g, &guesttest.Log{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if drv.got == nil || filepath.Dir(drv.got.DiskPath) != filepath.Join(data, "cache", "files") {
		t.Errorf("the client's driver got disk %+v, want its cached copy", drv.got)
	}
}
