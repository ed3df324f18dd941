package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
)

// snapshotCommand is "kvm-compose snapshot create|list|info|restore|delete
// GUEST [NAME]": each runs the snapshot action and streams its log like up.
func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take, list, inspect, restore and delete snapshots of a guest",
		Long: `Snapshots of a running libvirt guest hold its memory and disks: restoring
one resumes the guest where it was. Guests of other kinds have no snapshots.
A snapshot action never changes the deployment's state.

` + exitCodesHelp,
	}
	sub := func(name, use, short string, args cobra.PositionalArgs) *cobra.Command {
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
	cmd.AddCommand(
		sub("create", "create GUEST [NAME]", "Take a snapshot of GUEST (named snap-<UTC time> unless NAME is given)", cobra.RangeArgs(1, 2)),
		sub("list", "list GUEST", "List the snapshots of GUEST", cobra.ExactArgs(1)),
		sub("info", "info GUEST NAME", "Describe snapshot NAME of GUEST", cobra.ExactArgs(2)),
		sub("restore", "restore GUEST NAME", "Revert GUEST to snapshot NAME", cobra.ExactArgs(2)),
		sub("delete", "delete GUEST NAME", "Delete snapshot NAME of GUEST", cobra.ExactArgs(2)),
	)
	return cmd
}
