package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/namespace"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// A namespace of a guest's name that someone else made, with a process in
// it and none of the guest's veths, is not a remnant of ours: up refuses
// it, naming it, and neither up nor down touches it.
func TestUpRefusesAForeignPartialNamespace(t *testing.T) {
	nettest.RequireRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	name := "fn" + hex.EncodeToString(b)
	dir := t.TempDir()
	yaml := "machines:\n  - name: a\n    network: [{switch: sw0, ip: 10.77.0.1}]\n    netns: {}\nnetwork:\n  switches:\n    sw0: {subnet: 10.77.0.0/24}\n"
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.Options{
		Drivers:      guest.NewRegistry(New(Options{})),
		Network:      hostnet.NewHost(nil),
		GeneratedDir: filepath.Join(t.TempDir(), "generated"),
	})
	d := api.Deployment{Name: name, ProjectLocation: dir}
	t.Cleanup(func() { nettest.RemoveAll(topology.Prefix(name)) })
	log := &guesttest.Log{T: t}
	ctx := context.Background()
	if err := e.GenerateArtefacts(ctx, d, log); err != nil {
		t.Fatal(err)
	}

	ns := topology.NamespaceName(name, "a")
	nsfd, h, err := namespace.Create(netnsPath(ns))
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	cmd, err := startInNetns(nsfd, []string{"sleep", "300"}, func(c *exec.Cmd) {})
	unix.Close(nsfd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		namespace.Remove(netnsPath(ns))
	})

	err = e.Up(ctx, d, api.UpOptions{}, log)
	if !errors.Is(err, engine.ErrConflict) || !strings.Contains(err.Error(), "namespace "+ns) {
		t.Fatalf("up over a foreign namespace = %v, want a conflict naming namespace %s", err, ns)
	}
	if err := e.Down(ctx, d, log); err != nil {
		t.Fatal(err)
	}
	if ok, err := namespace.Mounted(netnsPath(ns)); err != nil || !ok {
		t.Fatalf("the foreign namespace is gone (%v)", err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the foreign namespace's process is gone: %v", err)
	}
}
