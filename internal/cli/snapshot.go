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
		return &cobra.Command{
			Use:   use,
			Short: short,
			Long:  actionHelp(short),
			Args:  args,
			RunE: func(cmd *cobra.Command, args []string) error {
				opts := api.SnapshotOptions{SubCommand: name, Guest: args[0]}
				if len(args) > 1 {
					opts.Name = args[1]
				} else if name == "create" {
					opts.Name = "snap-" + time.Now().UTC().Format("20060102-150405")
				}
				if err := opts.Validate(); err != nil {
					return err
				}
				return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: api.CmdSnapshot, Snapshot: opts}})
			},
		}
	}
	var listFormat, infoFormat *outputFormat
	list := &cobra.Command{
		Use:   "list GUEST",
		Short: "List the snapshots of GUEST",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			snaps, err := c.Snapshots(cmd.Context(), name, args[0])
			if err != nil {
				return explain(err, name)
			}
			if listFormat.json() {
				return a.printJSON(snaps)
			}
			fmt.Fprintf(a.stdout, "guest %s: %s\n", args[0], plural(len(snaps), "snapshot"))
			for _, s := range snaps {
				fmt.Fprintf(a.stdout, "    %s: %s\n", s.Name, s.Summary())
			}
			return nil
		},
	}
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
				return explain(err, name)
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
		action("create", "create GUEST [NAME]", "Take a snapshot of GUEST (named snap-<UTC time> unless NAME is given)", cobra.RangeArgs(1, 2)),
		list,
		info,
		action("restore", "restore GUEST NAME", "Revert GUEST to snapshot NAME", cobra.ExactArgs(2)),
		action("delete", "delete GUEST NAME", "Delete snapshot NAME of GUEST", cobra.ExactArgs(2)),
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
