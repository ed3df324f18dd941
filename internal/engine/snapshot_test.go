package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/atomicfile"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/sshkey"
	"github.com/testbedos/testbedos/internal/topology"
)

// vmDriver is a fake libvirt driver: it writes an artefact and keeps
// snapshots in memory.
type vmDriver struct {
	*world
	snaps     map[string][]guest.Snapshot
	artefacts []string
}

func (v *vmDriver) Kind() string { return topology.KindLibvirt }
func (v *vmDriver) Capabilities() guest.Capabilities {
	return guest.Capabilities{Snapshots: true, Artefacts: true}
}

func (v *vmDriver) WriteArtefacts(ctx context.Context, st *topology.State, g *topology.Guest, out *atomicfile.Root, log actlog.Log) error {
	if _, err := sshkey.Load(out.Dir()); err != nil {
		return fmt.Errorf("the key is not there before the drivers run: %w", err)
	}
	v.artefacts = append(v.artefacts, g.Name)
	return out.Write(g.Name+".xml", []byte("<domain/>"), 0o644)
}

func (v *vmDriver) CreateSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	s := guest.Snapshot{Name: name, Created: time.Unix(1700000000, 0).UTC(), State: "running", Memory: true, Disks: []string{"vda"}, Current: true}
	v.snaps[g.Name] = append(v.snaps[g.Name], s)
	return s, nil
}

func (v *vmDriver) ListSnapshots(ctx context.Context, dep guest.Deployment, g *topology.Guest) ([]guest.Snapshot, error) {
	return v.snaps[g.Name], nil
}

func (v *vmDriver) SnapshotInfo(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	for _, s := range v.snaps[g.Name] {
		if s.Name == name {
			return s, nil
		}
	}
	return guest.Snapshot{}, fmt.Errorf("guest %s: %w %s", g.Name, guest.ErrNoSnapshot, name)
}

func (v *vmDriver) RestoreSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	_, err := v.SnapshotInfo(ctx, dep, g, name)
	return err
}

func (v *vmDriver) DeleteSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	if _, err := v.SnapshotInfo(ctx, dep, g, name); err != nil {
		return err
	}
	v.snaps[g.Name] = nil
	return nil
}

const mixedTopo = `machines:
  - name: ns1
    network: [{switch: sw0, ip: 10.0.0.1}]
  - name: vm1
    network: [{switch: sw0, ip: 10.0.0.2}]
    libvirt:
      cpus: 1
      memory_mb: 64
      libvirt_type: {kernel: {kernel: vmlinuz}}
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

func setupMixed(t *testing.T) (*Engine, *vmDriver, api.Deployment) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(mixedTopo), 0o644)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	ns := newWorld()
	vm := &vmDriver{world: newWorld(), snaps: map[string][]guest.Snapshot{}}
	e := New(Options{Drivers: guest.NewRegistry(ns, vm), Network: ns})
	d := api.Deployment{Name: "mixed", ProjectLocation: dir}
	if err := e.GenerateArtefacts(context.Background(), d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	return e, vm, d
}

func TestGenerateArtefactsWritesKeyAndDriverArtefacts(t *testing.T) {
	e, vm, d := setupMixed(t)
	art := filepath.Join(d.ProjectLocation, "artefacts")
	fi, err := os.Stat(filepath.Join(art, "ssh", "id_ed25519"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v, %v", fi, err)
	}
	if len(vm.artefacts) != 1 || vm.artefacts[0] != "vm1" {
		t.Fatalf("artefact writer ran for %v, want vm1 only", vm.artefacts)
	}
	// Generating again keeps the key.
	before, _ := os.ReadFile(filepath.Join(art, "ssh", "id_ed25519"))
	if err := e.GenerateArtefacts(context.Background(), d, &guesttest.Log{}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(art, "ssh", "id_ed25519"))
	if string(before) != string(after) {
		t.Fatal("generate-artefacts replaced the deployment's key")
	}
}

func TestSnapshotCommand(t *testing.T) {
	e, _, d := setupMixed(t)
	ctx := context.Background()
	snap := func(sub, guestName, name string) api.Command {
		return api.Command{Name: api.CmdSnapshot, Snapshot: api.SnapshotOptions{SubCommand: sub, Guest: guestName, Name: name}}
	}
	for _, tc := range []struct {
		cmd  api.Command
		want string
	}{
		{snap("create", "ns1", "s1"), "guest ns1: netns guests have no snapshots"},
		{snap("list", "nobody", ""), "deployment mixed has no guest nobody (guests: ns1, vm1)"},
	} {
		// Accepted, then failing as an action, with the reason in the log.
		if err := e.Check(ctx, d, api.StateIsUp, tc.cmd); err != nil {
			t.Errorf("Check %+v = %v", tc.cmd.Snapshot, err)
		}
		if _, err := e.Execute(ctx, d, api.StateIsUp, tc.cmd, &guesttest.Log{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Execute %+v = %v", tc.cmd.Snapshot, err)
		}
	}

	steps := []struct {
		cmd  api.Command
		want []string
	}{
		{snap("create", "vm1", "s1"), []string{"guest vm1: snapshot s1 taken: taken 2023-11-14T22:13:20Z, guest running, memory and disks vda, current"}},
		{snap("list", "vm1", ""), []string{"guest vm1: 1 snapshot", "    s1: taken"}},
		{snap("info", "vm1", "s1"), []string{"guest vm1: snapshot s1", "    memory:   yes", "    disks:    vda"}},
		{snap("restore", "vm1", "s1"), []string{"guest vm1: restored snapshot s1"}},
		{snap("delete", "vm1", "s1"), []string{"guest vm1: deleted snapshot s1"}},
		{snap("list", "vm1", ""), []string{"guest vm1: 0 snapshots"}},
	}
	for _, s := range steps {
		if err := e.Check(ctx, d, api.StateIsUp, s.cmd); err != nil {
			t.Fatalf("Check %+v: %v", s.cmd.Snapshot, err)
		}
		log := &guesttest.Log{}
		end, err := e.Execute(ctx, d, api.StateIsUp, s.cmd, log)
		if err != nil {
			t.Fatalf("%+v: %v", s.cmd.Snapshot, err)
		}
		if !end.Is(api.StateUp) {
			t.Errorf("%+v: state after = %v, want it unchanged (up)", s.cmd.Snapshot, end)
		}
		for _, w := range s.want {
			if !strings.Contains(log.Text(), w) {
				t.Errorf("%+v: log lacks %q:\n%s", s.cmd.Snapshot, w, log.Text())
			}
		}
	}
	if _, err := e.Execute(ctx, d, api.StateIsUp, snap("restore", "vm1", "gone"), &guesttest.Log{}); !errors.Is(err, guest.ErrNoSnapshot) {
		t.Errorf("restore of a missing snapshot: %v", err)
	}
}
