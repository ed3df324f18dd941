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
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/atomicfile"
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
	// snapErr, when set, is what reading snapshots fails with.
	snapErr error
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
	if v.snapErr != nil {
		return nil, v.snapErr
	}
	return v.snaps[g.Name], nil
}

func (v *vmDriver) SnapshotInfo(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	if v.snapErr != nil {
		return guest.Snapshot{}, v.snapErr
	}
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
	ns := newWorld()
	vm := &vmDriver{world: newWorld(), snaps: map[string][]guest.Snapshot{}}
	e, d := generatedEngine(t, "mixed", mixedTopo, map[string]string{"vmlinuz": "kernel"}, Options{Drivers: guest.NewRegistry(ns, vm), Network: ns})
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
		is   error
		want string
	}{
		{snap("create", "ns1", "s1"), ErrUnsupported, "guest ns1 of kind netns has no snapshots (kinds with snapshots: libvirt)"},
		{snap("restore", "nobody", "s1"), ErrNotFound, "deployment mixed has no guest nobody (guests: ns1, vm1)"},
	} {
		// Refused before anything is recorded, so the state cannot change.
		if err := e.Check(ctx, d, api.StateIsUp, tc.cmd); !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check %+v = %v, want %v saying %q", tc.cmd.Snapshot, err, tc.is, tc.want)
		}
	}

	steps := []struct {
		cmd  api.Command
		want []string
	}{
		{snap("create", "vm1", "s1"), []string{"guest vm1: snapshot s1 taken: taken 2023-11-14T22:13:20Z, guest running, memory and disks vda, current"}},
		{snap("restore", "vm1", "s1"), []string{"guest vm1: restored snapshot s1"}},
		{snap("delete", "vm1", "s1"), []string{"guest vm1: deleted snapshot s1"}},
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

func TestSnapshotReads(t *testing.T) {
	e, vm, d := setupMixed(t)
	ctx := context.Background()
	vm.snaps["vm1"] = []guest.Snapshot{{Name: "s1", Created: time.Unix(1700000000, 0).UTC(), State: "running", Memory: true, Disks: []string{"vda"}}}
	up, down := d, d
	up.State, down.State = api.StateIsUp, api.StateIsDown
	failed := d
	failed.State = api.FailedState(api.Command{Name: api.CmdUp})
	noArtefacts := api.Deployment{Name: "bare", ProjectLocation: t.TempDir(), State: api.StateIsDown}

	for _, tc := range []struct {
		name       string
		dep        api.Deployment
		guest      string
		snapshot   string // empty: list
		driverErr  error
		is         error
		want       string
		wantList   int
		wantMemory bool
	}{
		{name: "list", dep: up, guest: "vm1", wantList: 1},
		{name: "info", dep: up, guest: "vm1", snapshot: "s1", wantMemory: true},
		{name: "unknown snapshot", dep: up, guest: "vm1", snapshot: "nope", is: ErrNotFound, want: "no such snapshot nope"},
		{name: "unknown snapshot is the driver's", dep: up, guest: "vm1", snapshot: "nope", is: guest.ErrNoSnapshot},
		{name: "unknown guest", dep: up, guest: "nobody", is: ErrNotFound, want: "deployment mixed has no guest nobody (guests: ns1, vm1)"},
		{name: "netns", dep: up, guest: "ns1", is: ErrUnsupported, want: "guest ns1 of kind netns has no snapshots"},
		{name: "netns info", dep: up, guest: "ns1", snapshot: "s1", is: ErrUnsupported},
		{name: "netns while down", dep: down, guest: "ns1", is: ErrUnsupported},
		{name: "down", dep: down, guest: "vm1", is: ErrConflict, want: "deployment mixed is down, so guest vm1 does not exist: run up first"},
		{name: "no artefacts", dep: noArtefacts, guest: "vm1", is: ErrConflict, want: "deployment bare has no artefacts yet: run generate-artefacts"},
		{name: "failed up, guest not there", dep: failed, guest: "vm1", driverErr: errors.New("guest vm1 is not up"), is: ErrConflict, want: "guest vm1 is not up"},
		{name: "driver fault while up", dep: up, guest: "vm1", driverErr: errors.New("libvirtd is gone"), want: "libvirtd is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm.snapErr = tc.driverErr
			var err error
			if tc.snapshot == "" {
				var list []api.Snapshot
				list, err = e.ListSnapshots(ctx, tc.dep, tc.guest)
				if err == nil && len(list) != tc.wantList {
					t.Errorf("list = %+v, want %d", list, tc.wantList)
				}
			} else {
				var s api.Snapshot
				s, err = e.SnapshotInfo(ctx, tc.dep, tc.guest, tc.snapshot)
				if err == nil && (s.Name != tc.snapshot || s.Memory != tc.wantMemory || s.Summary() == "") {
					t.Errorf("info = %+v", s)
				}
			}
			switch {
			case tc.is == nil && tc.want == "":
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Fatalf("err = %v, want one wrapping %v", err, tc.is)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			case tc.driverErr != nil && (errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnsupported)):
				t.Fatalf("a driver fault %v is not a missing thing", err)
			}
		})
	}
	if len(vm.snaps["vm1"]) != 1 {
		t.Errorf("reads changed the snapshots: %+v", vm.snaps["vm1"])
	}
}
