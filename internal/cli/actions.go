package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
)

// actionsCommand is "kvm-compose actions [NAME]": the deployment's past
// actions, newest first, a page at a time.
func (a *app) actionsCommand() *cobra.Command {
	var limit, page int
	cmd := &cobra.Command{
		Use:   "actions [NAME]",
		Short: "List the deployment's actions, newest first: uuid, command, start, duration, outcome",
		Long: `Lists the actions of the deployment (NAME, else --project-name or the folder's
name), newest first, --limit to a page; --page 2 shows the next ones. The
running action is listed too, its outcome "running". Read one's log with
kvm-compose logs UUID.`,
		Args: cobra.MaximumNArgs(1),
	}
	format := formatFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if limit < 1 || limit > api.MaxActionsLimit {
			return fmt.Errorf("--limit %d: give 1 to %d", limit, api.MaxActionsLimit)
		}
		if page < 1 {
			return fmt.Errorf("--page %d: pages count from 1", page)
		}
		name, c, err := a.target(args)
		if err != nil {
			return err
		}
		res, err := c.Actions(cmd.Context(), name, limit, (page-1)*limit)
		if err != nil {
			return a.explain(cmd.Context(), c, err, name)
		}
		if format.json() {
			return a.printJSON(res)
		}
		if res.Total == 0 {
			fmt.Fprintf(a.stdout, "deployment %s has run no action yet\n", name)
			return nil
		}
		if len(res.Actions) == 0 {
			return fmt.Errorf("--page %d: deployment %s has %s, %d to a page", page, name, plural(res.Total, "action"), limit)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "UUID\tCOMMAND\tSTARTED\tDURATION\tOUTCOME")
		for _, s := range res.Actions {
			took := "-"
			if s.DurationMS != nil {
				took = (time.Duration(*s.DurationMS) * time.Millisecond).Round(10 * time.Millisecond).String()
			}
			outcome := s.Outcome
			if s.ErrorCode != nil && *s.ErrorCode != api.ErrorCodeOK {
				outcome = fmt.Sprintf("%s (%d)", outcome, *s.ErrorCode)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.UUID, s.Command, s.Started.Local().Format("2006-01-02 15:04:05"), took, outcome)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		first := (page-1)*limit + 1
		fmt.Fprintf(a.stdout, "%d-%d of %d", first, first+len(res.Actions)-1, res.Total)
		if res.Next != nil {
			more := ""
			if limit != api.DefaultActionsLimit {
				more = fmt.Sprintf(" --limit %d", limit)
			}
			fmt.Fprintf(a.stdout, "; older: kvm-compose actions %s%s --page %d", name, more, page+1)
		}
		fmt.Fprintln(a.stdout)
		return nil
	}
	cmd.Flags().IntVar(&limit, "limit", api.DefaultActionsLimit, "actions to a page")
	cmd.Flags().IntVar(&page, "page", 1, "page to show, 1 the newest")
	return cmd
}
