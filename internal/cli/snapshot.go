package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
)

// snapshotCommand is "kvm-compose snapshot create|list|info|restore|delete
// GUEST [NAME]". create, restore and delete run the snapshot action and
// stream its log like up; list and info only read (GET), so they never
// touch the deployment's state.
func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take, list, inspect, restore and delete snapshots of a guest",
		Long: `Snapshots of a running libvirt guest hold its memory and disks: restoring
one resumes the guest where it was. Guests of other kinds have no snapshots.
A snapshot action never changes the deployment's state.

` + exitCodesHelp,
	}
	action := func(name, use, short string, args cobra.PositionalArgs) *cobra.Command {
		var f snapshotFlags
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Long:  actionHelp(short),
			Args:  args,
			RunE: func(cmd *cobra.Command, args []string) error {
				guest, snap, err := f.target(args, name)
				if err != nil {
					return err
				}
				if f.all {
					return a.snapshotAll(cmd.Context(), name, guest, snap)
				}
				opts := api.SnapshotOptions{SubCommand: name, Guest: guest, Name: snap}
				if opts.Name == "" && name == "create" {
					opts.Name = newSnapshotName()
				}
				if err := opts.Validate(); err != nil {
					return err
				}
				return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot, Snapshot: opts}})
			},
		}
		f.bind(c, name)
		return c
	}
	var lf snapshotFlags
	var listFormat, infoFormat *outputFormat
	list := &cobra.Command{
		Use:   "list GUEST",
		Short: "List the snapshots of GUEST (--all: of every guest that has snapshots)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			guests := []string{lf.guest}
			if len(args) > 0 {
				guests = args
			}
			if lf.all {
				if guests, err = snapshotGuests(cmd.Context(), c, name); err != nil {
					return a.explain(cmd.Context(), c, err, name)
				}
			} else if guests[0] == "" {
				return fmt.Errorf("name the guest (list GUEST, or --name GUEST), or give --all")
			}
			var all []api.Snapshot
			for _, g := range guests {
				snaps, err := c.Snapshots(cmd.Context(), name, g)
				if err != nil {
					return a.explain(cmd.Context(), c, err, name)
				}
				if listFormat.json() {
					all = append(all, snaps...)
					continue
				}
				fmt.Fprintf(a.stdout, "guest %s: %s\n", g, plural(len(snaps), "snapshot"))
				for _, s := range snaps {
					fmt.Fprintf(a.stdout, "    %s: %s\n", s.Name, s.Summary())
				}
			}
			if listFormat.json() {
				if all == nil {
					all = []api.Snapshot{}
				}
				return a.printJSON(all)
			}
			return nil
		},
	}
	lf.bind(list, "list")
	info := &cobra.Command{
		Use:   "info GUEST NAME",
		Short: "Describe snapshot NAME of GUEST",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			s, err := c.Snapshot(cmd.Context(), name, args[0], args[1])
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			if infoFormat.json() {
				return a.printJSON(s)
			}
			yesNo := func(b bool, yes string) string {
				if b {
					return yes
				}
				return "no"
			}
			fmt.Fprintf(a.stdout, "guest %s: snapshot %s\n", args[0], s.Name)
			fmt.Fprintf(a.stdout, "    created:  %s\n", s.Created.Format(time.RFC3339))
			fmt.Fprintf(a.stdout, "    state:    %s\n", s.State)
			fmt.Fprintf(a.stdout, "    memory:   %s\n", yesNo(s.Memory, "yes (restoring resumes the guest where it was)"))
			fmt.Fprintf(a.stdout, "    disks:    %s\n", orNone(strings.Join(s.Disks, ", ")))
			fmt.Fprintf(a.stdout, "    parent:   %s\n", orNone(s.Parent))
			fmt.Fprintf(a.stdout, "    current:  %s\n", yesNo(s.Current, "yes"))
			if s.Description != "" {
				fmt.Fprintf(a.stdout, "    description: %s\n", s.Description)
			}
			return nil
		},
	}
	listFormat, infoFormat = formatFlag(list), formatFlag(info)
	cmd.AddCommand(
		action("create", "create GUEST [NAME]", "Take a snapshot of GUEST (named snap-<UTC time> unless NAME is given; --all: of every libvirt guest)", cobra.RangeArgs(0, 2)),
		list,
		info,
		action("restore", "restore GUEST NAME", "Revert GUEST to snapshot NAME (--all: every libvirt guest to its newest)", cobra.MaximumNArgs(2)),
		action("delete", "delete GUEST NAME", "Delete snapshot NAME of GUEST (--all: every snapshot of GUEST, or of every guest)", cobra.MaximumNArgs(2)),
	)
	return cmd
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
