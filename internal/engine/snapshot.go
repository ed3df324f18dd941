package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/testbedos/testbedos/internal/actlog"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/topology"
)

// Snapshot runs a snapshot sub-command on one guest and writes what it
// finds into the action log.
func (e *Engine) Snapshot(ctx context.Context, d api.Deployment, opts api.SnapshotOptions, log actlog.Log) error {
	st, g, snap, err := e.snapshotTarget(d, opts.Guest)
	if err != nil {
		return err
	}
	switch opts.SubCommand {
	case "create":
		log.Printf("guest %s: taking snapshot %s", g.Name, opts.Name)
		s, err := snap.CreateSnapshot(ctx, st, g, opts.Name)
		if err != nil {
			return err
		}
		log.Printf("guest %s: snapshot %s taken: %s", g.Name, s.Name, describeSnapshot(s))
	case "list":
		list, err := snap.ListSnapshots(ctx, st, g)
		if err != nil {
			return err
		}
		log.Printf("guest %s: %s", g.Name, count(len(list), "snapshot"))
		for _, s := range list {
			log.Printf("    %s: %s", s.Name, describeSnapshot(s))
		}
	case "info":
		s, err := snap.SnapshotInfo(ctx, st, g, opts.Name)
		if err != nil {
			return err
		}
		log.Printf("guest %s: snapshot %s", g.Name, s.Name)
		log.Printf("    created:  %s", s.Created.Format(time.RFC3339))
		log.Printf("    state:    %s", s.State)
		log.Printf("    memory:   %s", ifThen(s.Memory, "yes (restoring resumes the guest where it was)", "no"))
		log.Printf("    disks:    %s", orNone(strings.Join(s.Disks, ", ")))
		log.Printf("    parent:   %s", orNone(s.Parent))
		log.Printf("    current:  %s", ifThen(s.Current, "yes", "no"))
		if s.Description != "" {
			log.Printf("    description: %s", s.Description)
		}
	case "restore":
		log.Printf("guest %s: restoring snapshot %s", g.Name, opts.Name)
		if err := snap.RestoreSnapshot(ctx, st, g, opts.Name); err != nil {
			return err
		}
		log.Printf("guest %s: restored snapshot %s", g.Name, opts.Name)
	case "delete":
		if err := snap.DeleteSnapshot(ctx, st, g, opts.Name); err != nil {
			return err
		}
		log.Printf("guest %s: deleted snapshot %s", g.Name, opts.Name)
	default:
		return fmt.Errorf("snapshot: unknown sub-command %q", opts.SubCommand)
	}
	return nil
}

// snapshotTarget finds a guest of the state, the deployment as its host's
// driver sees it, and that driver's snapshots.
func (e *Engine) snapshotTarget(d api.Deployment, name string) (guest.Deployment, *topology.Guest, guest.Snapshotter, error) {
	st, err := e.readState(d)
	if err != nil {
		return guest.Deployment{}, nil, nil, err
	}
	var names []string
	for i := range st.Guests {
		g := &st.Guests[i]
		names = append(names, g.Name)
		if g.Name != name {
			continue
		}
		host, err := e.opts.Hosts.Host(g.Host)
		if err != nil {
			return guest.Deployment{}, nil, nil, fmt.Errorf("guest %s: %w", g.Name, err)
		}
		drv, err := host.Driver(g.Kind)
		if err != nil {
			return guest.Deployment{}, nil, nil, fmt.Errorf("guest %s: %w", g.Name, err)
		}
		snap, err := guest.SnapshotterOf(drv)
		if err != nil {
			return guest.Deployment{}, nil, nil, fmt.Errorf("guest %s: %w", g.Name, err)
		}
		return guest.Deployment{Name: d.Name, Files: host.Files(d.ProjectLocation)}, g, snap, nil
	}
	return guest.Deployment{}, nil, nil, fmt.Errorf("deployment %s has no guest %s (guests: %s)", st.Deployment, name, strings.Join(names, ", "))
}

func describeSnapshot(s guest.Snapshot) string {
	parts := []string{"taken " + s.Created.Format(time.RFC3339), "guest " + ifThen(s.State != "", s.State, "in an unknown state")}
	switch {
	case s.Memory && len(s.Disks) > 0:
		parts = append(parts, "memory and disks "+strings.Join(s.Disks, ", "))
	case s.Memory:
		parts = append(parts, "memory")
	case len(s.Disks) > 0:
		parts = append(parts, "disks "+strings.Join(s.Disks, ", "))
	}
	if s.Current {
		parts = append(parts, "current")
	}
	return strings.Join(parts, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
