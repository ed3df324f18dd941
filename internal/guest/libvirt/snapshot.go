package libvirt

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Snapshots are libvirt's: of a running guest an internal qcow2 snapshot
// of its memory and disk (QEMU's savevm), restored by reverting to it,
// which resumes the guest where it was. Read-only disks (seed, ISO) are
// left out.

// CreateSnapshot takes a snapshot of the guest named name.
func (d *Driver) CreateSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	var out guest.Snapshot
	err := d.withDomain(ctx, g, func(s *session, dom golibvirt.Domain) error {
		if _, err := s.DomainSnapshotLookupByName(dom, name, 0); err == nil {
			return fmt.Errorf("guest %s already has a snapshot %s: delete it first or choose another name", g.Name, name)
		}
		xml, err := (&libvirtxml.DomainSnapshot{Name: name, Description: "taken by TestbedOS"}).Marshal()
		if err != nil {
			return err
		}
		snap, err := s.DomainSnapshotCreateXML(dom, xml, 0)
		if err != nil {
			return s.err(fmt.Errorf("guest %s: snapshot %s: %w", g.Name, name, err))
		}
		out, err = describeSnapshot(s, snap)
		return err
	})
	return out, err
}

// ListSnapshots lists the guest's snapshots, oldest first.
func (d *Driver) ListSnapshots(ctx context.Context, dep guest.Deployment, g *topology.Guest) ([]guest.Snapshot, error) {
	var out []guest.Snapshot
	err := d.withDomain(ctx, g, func(s *session, dom golibvirt.Domain) error {
		snaps, _, err := s.DomainListAllSnapshots(dom, 1, 0)
		if err != nil {
			return s.err(fmt.Errorf("guest %s: list snapshots: %w", g.Name, err))
		}
		for _, snap := range snaps {
			info, err := describeSnapshot(s, snap)
			if err != nil {
				return err
			}
			out = append(out, info)
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
		return nil
	})
	return out, err
}

// SnapshotInfo describes one snapshot.
func (d *Driver) SnapshotInfo(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) (guest.Snapshot, error) {
	var out guest.Snapshot
	err := d.withSnapshot(ctx, g, name, func(s *session, snap golibvirt.DomainSnapshot) error {
		var err error
		out, err = describeSnapshot(s, snap)
		return err
	})
	return out, err
}

// RestoreSnapshot reverts the guest to the snapshot.
func (d *Driver) RestoreSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	return d.withSnapshot(ctx, g, name, func(s *session, snap golibvirt.DomainSnapshot) error {
		if err := s.DomainRevertToSnapshot(snap, 0); err != nil {
			return s.err(fmt.Errorf("guest %s: restore snapshot %s: %w", g.Name, name, err))
		}
		return nil
	})
}

// DeleteSnapshot deletes the snapshot (its data inside the qcow2 too).
func (d *Driver) DeleteSnapshot(ctx context.Context, dep guest.Deployment, g *topology.Guest, name string) error {
	return d.withSnapshot(ctx, g, name, func(s *session, snap golibvirt.DomainSnapshot) error {
		if err := s.DomainSnapshotDelete(snap, 0); err != nil {
			return s.err(fmt.Errorf("guest %s: delete snapshot %s: %w", g.Name, name, err))
		}
		return nil
	})
}

// withDomain calls fn with the guest's domain; a guest that is not defined
// is an error saying so.
func (d *Driver) withDomain(ctx context.Context, g *topology.Guest, fn func(*session, golibvirt.Domain) error) error {
	spec, err := specOf(g)
	if err != nil {
		return err
	}
	s, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	dom, err := s.DomainLookupByName(spec.Domain)
	if noDomain(err) {
		return fmt.Errorf("guest %s is not up (no domain %s): run up first", g.Name, spec.Domain)
	}
	if err != nil {
		return s.err(fmt.Errorf("look up domain %s: %w", spec.Domain, err))
	}
	return fn(s, dom)
}

// withSnapshot calls fn with a snapshot of the guest; an unknown name is an
// error wrapping guest.ErrNoSnapshot that lists the names there are.
func (d *Driver) withSnapshot(ctx context.Context, g *topology.Guest, name string, fn func(*session, golibvirt.DomainSnapshot) error) error {
	return d.withDomain(ctx, g, func(s *session, dom golibvirt.Domain) error {
		snap, err := s.DomainSnapshotLookupByName(dom, name, 0)
		if noSnapshot(err) {
			names, _ := s.DomainSnapshotListNames(dom, 1024, 0)
			have := "it has none"
			if len(names) > 0 {
				sort.Strings(names)
				have = "it has " + strings.Join(names, ", ")
			}
			return fmt.Errorf("guest %s: %w %s (%s)", g.Name, guest.ErrNoSnapshot, name, have)
		}
		if err != nil {
			return s.err(fmt.Errorf("guest %s: snapshot %s: %w", g.Name, name, err))
		}
		return fn(s, snap)
	})
}

func describeSnapshot(s *session, snap golibvirt.DomainSnapshot) (guest.Snapshot, error) {
	raw, err := s.DomainSnapshotGetXMLDesc(snap, 0)
	if err != nil {
		return guest.Snapshot{}, s.err(fmt.Errorf("snapshot %s: %w", snap.Name, err))
	}
	info, err := parseSnapshot(raw)
	if err != nil {
		return guest.Snapshot{}, fmt.Errorf("snapshot %s: %w", snap.Name, err)
	}
	if cur, err := s.DomainSnapshotIsCurrent(snap, 0); err == nil {
		info.Current = cur == 1
	}
	return info, nil
}

// parseSnapshot reads libvirt's snapshot XML.
func parseSnapshot(raw string) (guest.Snapshot, error) {
	var x libvirtxml.DomainSnapshot
	if err := x.Unmarshal(raw); err != nil {
		return guest.Snapshot{}, err
	}
	out := guest.Snapshot{Name: x.Name, State: x.State, Description: x.Description}
	if secs, err := strconv.ParseInt(x.CreationTime, 10, 64); err == nil {
		out.Created = time.Unix(secs, 0).UTC()
	}
	if x.Parent != nil {
		out.Parent = x.Parent.Name
	}
	if x.Memory != nil {
		out.Memory = x.Memory.Snapshot != "" && x.Memory.Snapshot != "no"
	}
	if x.Disks != nil {
		for _, disk := range x.Disks.Disks {
			if disk.Snapshot != "no" {
				out.Disks = append(out.Disks, disk.Name)
			}
		}
	}
	return out, nil
}
