package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// snapDriver is a fake driver with snapshots kept in memory.
type snapDriver struct {
	fakeDriver
	snaps map[string]guest.Snapshot
}

func (s *snapDriver) Capabilities() guest.Capabilities { return guest.Capabilities{Snapshots: true} }

func (s *snapDriver) CreateSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	snap := guest.Snapshot{Name: name, Created: time.Unix(1700000000, 0).UTC(), State: "running", Current: true}
	s.snaps[g.Name+"/"+name] = snap
	return snap, nil
}

func (s *snapDriver) ListSnapshots(ctx context.Context, dep guest.Deployment, g *topology.Guest) ([]guest.Snapshot, error) {
	var out []guest.Snapshot
	for _, sn := range s.snaps {
		out = append(out, sn)
	}
	return out, nil
}

func (s *snapDriver) SnapshotInfo(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	sn, ok := s.snaps[g.Name+"/"+name]
	if !ok {
		return guest.Snapshot{}, fmt.Errorf("guest %s: snapshot %s: %w", g.Name, name, guest.ErrNoSnapshot)
	}
	return sn, nil
}

func (s *snapDriver) RestoreSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	_, err := s.SnapshotInfo(ctx, dep, g, name)
	return err
}

func (s *snapDriver) DeleteSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	if _, err := s.SnapshotInfo(ctx, dep, g, name); err != nil {
		return err
	}
	delete(s.snaps, g.Name+"/"+name)
	return nil
}

func TestSnapshotsThroughTheAgent(t *testing.T) {
	ctx := context.Background()
	start := func(drv guest.Driver) guest.Driver {
		srv := httptest.NewServer(agent.Handler(agent.Options{Name: "c1", DataDir: t.TempDir(), Drivers: guest.NewRegistry(drv)}))
		t.Cleanup(srv.Close)
		remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "c1", BaseURL: srv.URL, Client: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		proxy, err := remote.Driver(topology.KindNetns)
		if err != nil {
			t.Fatal(err)
		}
		return proxy
	}
	dep := guest.Deployment{Name: "d1"}
	g := &topology.Guest{Name: "vm1", Kind: topology.KindNetns}

	// A kind without snapshots on the client has none through the proxy.
	if _, err := guest.As[guest.Snapshotter](start(&fakeDriver{guests: map[string]bool{}})); !errors.Is(err, guest.ErrUnsupported) {
		t.Errorf("proxy of a driver without snapshots: %v, want ErrUnsupported", err)
	}

	snap, err := guest.As[guest.Snapshotter](start(&snapDriver{fakeDriver: fakeDriver{guests: map[string]bool{}}, snaps: map[string]guest.Snapshot{}}))
	if err != nil {
		t.Fatal(err)
	}
	made, err := snap.CreateSnapshot(ctx, dep, g, "s1")
	if err != nil || made.Name != "s1" || made.State != "running" {
		t.Fatalf("create: %+v, %v", made, err)
	}
	list, err := snap.ListSnapshots(ctx, dep, g)
	if err != nil || len(list) != 1 || !list[0].Created.Equal(made.Created) {
		t.Errorf("list: %+v, %v", list, err)
	}
	if err := snap.RestoreSnapshot(ctx, dep, g, "s1"); err != nil {
		t.Errorf("restore: %v", err)
	}
	if err := snap.DeleteSnapshot(ctx, dep, g, "s1"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := snap.SnapshotInfo(ctx, dep, g, "s1"); !errors.Is(err, guest.ErrNoSnapshot) {
		t.Errorf("info of a deleted snapshot: %v, want ErrNoSnapshot", err)
	}
}
