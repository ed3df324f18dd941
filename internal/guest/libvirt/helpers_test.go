package libvirt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/libvirt"
	"github.com/testbedos/testbedos/internal/guest/libvirt/libvirttest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
	"github.com/testbedos/testbedos/test/guestimage"
)

// testImage is the project's test VM image (built once, cached).
func testImage(t testing.TB) *guestimage.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := guestimage.Cached(ctx, guestimage.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("test guest image: %v", err)
	}
	return img
}

// vmProject makes a project folder QEMU's unprivileged user can enter,
// holding kvm-compose.yaml, the test image's kernel and initrd (vmlinux,
// initrd.gz) and files.
func vmProject(t testing.TB, img *guestimage.Image, yaml string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir makes 0700 folders: open the way to the project.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(from, to string) {
		if err := os.Link(from, to); err == nil {
			return
		}
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link(img.BootKernel(), filepath.Join(dir, "vmlinux"))
	link(img.Initrd, filepath.Join(dir, "initrd.gz"))
	files["kvm-compose.yaml"] = yaml
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// world is an engine with the netns and libvirt drivers on this host's
// network, and a deployment of a project.
type world struct {
	e   *engine.Engine
	drv *libvirt.Driver
	d   api.Deployment
	log *guesttest.Log
	// gen is the server's folder of generated artefacts, disks the
	// deployment's disks folder.
	gen, disks string
}

// dep is the deployment as the server's drivers see it.
func (w *world) dep() guest.Deployment {
	return guest.Deployment{Name: w.d.Name, Files: guest.ProjectFiles{Project: w.d.ProjectLocation, Generated: w.gen}}
}

func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newWorld assembles an engine and registers the clean-up of everything the
// deployment may leave, in libvirt and in the kernel.
func newWorld(t testing.TB, dir, prefix string, opts libvirt.Options) *world {
	t.Helper()
	name := uniqueName(prefix)
	if opts.ImageCache == "" {
		opts.ImageCache = filepath.Join(dir, "cache")
	}
	// The server's data folder, which QEMU's user must be able to enter.
	data := t.TempDir()
	for d := data; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if opts.DisksDir == "" {
		opts.DisksDir = filepath.Join(data, "disks")
	}
	drv := libvirt.New(opts)
	w := &world{
		drv:   drv,
		d:     api.Deployment{Name: name, ProjectLocation: dir},
		log:   &guesttest.Log{T: t},
		gen:   filepath.Join(data, "generated"),
		disks: filepath.Join(opts.DisksDir, name),
	}
	w.e = engine.New(engine.Options{
		Drivers:      guest.NewRegistry(netns.New(netns.Options{}), drv),
		Network:      hostnet.NewHost(nil),
		GeneratedDir: w.gen, DisksDir: opts.DisksDir,
	})
	t.Cleanup(func() {
		if err := libvirttest.RemoveAll(name); err != nil {
			t.Errorf("clean-up: %v", err)
		}
		nettest.RemoveAll(topology.Prefix(name))
		nettest.RemoveAll("tbos." + name + ".")
	})
	return w
}

func (w *world) state(t testing.TB) *topology.State {
	t.Helper()
	st, err := topology.ReadState(topology.StatePath(w.d.ProjectLocation))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (w *world) guest(t testing.TB, name string) (*topology.State, *topology.Guest) {
	t.Helper()
	st := w.state(t)
	for i := range st.Guests {
		if st.Guests[i].Name == name {
			return st, &st.Guests[i]
		}
	}
	t.Fatalf("no guest %s", name)
	return nil, nil
}

// sh runs a command in a guest over SSH and returns its output.
func (w *world) sh(t testing.TB, guestName, cmd string) string {
	t.Helper()
	_, g := w.guest(t, guestName)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := w.drv.Dial(ctx, w.dep(), g)
	if err != nil {
		t.Fatalf("ssh %s: %v", guestName, err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %q: %v\n%s", guestName, cmd, err, out)
	}
	return strings.TrimSpace(string(out))
}
