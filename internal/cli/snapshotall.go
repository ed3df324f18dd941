package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/topology"
)

// snapshotFlags are the original's spellings of a snapshot verb's
// arguments: --name GUEST, --snapshot NAME, --all.
type snapshotFlags struct {
	guest, snapshot string
	all             bool
}

func (f *snapshotFlags) bind(c *cobra.Command, sub string) {
	c.Flags().StringVarP(&f.guest, "name", "n", "", "the guest (the original's spelling of the GUEST argument)")
	if sub != "list" {
		c.Flags().StringVarP(&f.snapshot, "snapshot", "s", "", "the snapshot (the original's spelling of the NAME argument)")
	}
	c.Flags().BoolVarP(&f.all, "all", "a", false, "every libvirt guest of the deployment")
}

// target is the guest and snapshot named by the arguments or the flags.
func (f *snapshotFlags) target(args []string, sub string) (guest, snap string, err error) {
	guest, snap = f.guest, f.snapshot
	switch {
	case f.all && guest == "" && len(args) > 0:
		// --all takes the snapshot name as its only argument.
		snap = args[0]
		if len(args) > 1 {
			return "", "", fmt.Errorf("--all takes at most the snapshot name")
		}
	case len(args) > 0:
		if guest != "" {
			return "", "", fmt.Errorf("give the guest as an argument or as --name, not both")
		}
		guest = args[0]
		if len(args) > 1 {
			snap = args[1]
		}
	}
	switch {
	case f.all && sub == "create" && guest != "":
		return "", "", fmt.Errorf("--all snapshots every libvirt guest: give no guest")
	case f.all && sub == "restore" && (guest != "" || snap != ""):
		return "", "", fmt.Errorf("restore --all reverts every libvirt guest to its newest snapshot: give no guest or snapshot")
	case f.all && sub == "delete" && snap != "":
		return "", "", fmt.Errorf("delete --all deletes every snapshot: give no snapshot name")
	case !f.all && guest == "":
		return "", "", fmt.Errorf("name the guest (%s GUEST …, or --name GUEST), or give --all", sub)
	case !f.all && snap == "" && sub != "create":
		return "", "", fmt.Errorf("name the snapshot (%s GUEST NAME, or --snapshot NAME)", sub)
	}
	return guest, snap, nil
}

func newSnapshotName() string { return "snap-" + time.Now().UTC().Format("20060102-150405") }

// snapshotGuests lists the deployment's guests that have snapshots.
func snapshotGuests(ctx context.Context, c *client.Client, name string) ([]string, error) {
	raw, err := c.GuestsJSON(ctx, name)
	if err != nil {
		return nil, err
	}
	var guests []api.Guest
	if err := json.Unmarshal(raw, &guests); err != nil {
		return nil, fmt.Errorf("guests of %s: %w", name, err)
	}
	var out []string
	for _, g := range guests {
		if g.Kind == topology.KindLibvirt {
			out = append(out, g.Name)
		}
	}
	return out, nil
}

// snapshotAll runs a snapshot sub-command over every libvirt guest (or,
// for delete, every snapshot of guest), one action after another; it stops
// at the first that does not succeed.
func (a *app) snapshotAll(ctx context.Context, sub, guest, snap string) error {
	name, c, err := a.target(nil)
	if err != nil {
		return err
	}
	guests := []string{guest}
	if guest == "" {
		if guests, err = snapshotGuests(ctx, c, name); err != nil {
			return a.explain(ctx, c, err, name)
		}
	}
	if len(guests) == 0 {
		fmt.Fprintf(a.stdout, "deployment %s has no libvirt guests: nothing to do\n", name)
		return nil
	}
	if sub == "create" && snap == "" {
		snap = newSnapshotName()
	}
	run := func(g, s string) error {
		opts := api.SnapshotOptions{SubCommand: sub, Guest: g, Name: s}
		if err := opts.Validate(); err != nil {
			return err
		}
		return a.runActionOn(ctx, c, name, api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot, Snapshot: opts}})
	}
	for _, g := range guests {
		if sub == "create" {
			if err := run(g, snap); err != nil {
				return err
			}
			continue
		}
		snaps, err := c.Snapshots(ctx, name, g)
		if err != nil {
			return a.explain(ctx, c, err, name)
		}
		if len(snaps) == 0 {
			fmt.Fprintf(a.stdout, "guest %s has no snapshots\n", g)
			continue
		}
		if sub == "restore" {
			newest := snaps[0]
			for _, s := range snaps {
				if s.Created.After(newest.Created) {
					newest = s
				}
			}
			snaps = []api.Snapshot{newest}
		}
		for _, s := range snaps {
			if err := run(g, s.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
