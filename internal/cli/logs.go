package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) logsCommand() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [UUID]",
		Short: "Print an action's log (default: the deployment's last action)",
		Long: `Print an action's log (default: the deployment's last action). With --follow
it streams the log until the action ends, and the exit status is its outcome.
` + exitCodesHelp + " (with --follow)",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var id, name string
			if len(args) == 1 {
				id = args[0]
				e, err := c.LogEntry(cmd.Context(), id)
				if err != nil {
					return err
				}
				name = e.Deployment
			} else {
				if name, err = a.deploymentName(); err != nil {
					return err
				}
				d, err := c.Deployment(cmd.Context(), name)
				if err != nil {
					return explain(err, name)
				}
				if d.LastActionUUID == nil {
					return fmt.Errorf("deployment %s has run no action yet", name)
				}
				id = *d.LastActionUUID
			}
			if follow {
				e, err := c.LogEntry(cmd.Context(), id)
				if err != nil {
					return err
				}
				return a.follow(cmd.Context(), c, name, id, e.Command.Name)
			}
			text, err := c.LogText(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprint(a.stdout, text)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the action ends; the exit status is its outcome")
	return cmd
}
