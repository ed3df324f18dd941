package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
)

// powerCommands are "kvm-compose stop|start|restart GUEST": the power
// action of one guest, its log streamed like up's. The deployment stays
// up; a stopped guest stays stopped (up, apply and a restore of the server
// leave it so) until it is started.
func (a *app) powerCommands() []*cobra.Command {
	verb := func(use, state, short string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " GUEST",
			Short: short,
			Long: actionHelp(short) + `

netns: stop kills every process in the guest and sets its links down; start
sets them up again (it starts no process). docker: the container is stopped
and started again (its command runs anew). libvirt: the domain gets the ACPI
power button, then after 5 s a power cut; start boots it again.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				opts := api.PowerOptions{Guest: args[0], State: state}
				if err := opts.Validate(); err != nil {
					return err
				}
				return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: api.CmdPower}, Power: &opts})
			},
		}
	}
	return []*cobra.Command{
		verb("stop", api.PowerStopped, "Stop one guest of the up deployment"),
		verb("start", api.PowerRunning, "Start a stopped guest again"),
		verb("restart", api.PowerRestarted, "Stop one guest and start it again"),
	}
}

// timelineCommand is "kvm-compose timeline": the action that runs the
// timeline of kvm-compose.yaml on the up deployment.
func (a *app) timelineCommand() *cobra.Command {
	var repeat int
	short := "Run the timeline of kvm-compose.yaml on the up deployment"
	cmd := &cobra.Command{
		Use:   "timeline",
		Short: short,
		Long: actionHelp(short) + `

Each change is made at its time from the start and logged with its planned
and actual time. Ctrl-C cancels the rest. Changes made stay in force and are
recorded like netem and stop/start at run time. "kvm-compose plan" shows the
timeline; "up --timeline" runs it right after up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: api.CmdTimeline, Timeline: api.TimelineOptions{Repeat: repeat}}})
		},
	}
	cmd.Flags().IntVar(&repeat, "repeat", 0, "run the list this many times (default: the file's repeat)")
	return cmd
}

// printTimeline lists the timeline plan shows (nothing when there is none).
func printTimeline(w io.Writer, t *api.PlanTimeline) {
	if t == nil {
		return
	}
	fmt.Fprintf(w, "timeline (kvm-compose timeline runs it; apply does not): %d changes, %d rounds, period %.3fs\n", len(t.Changes), t.Repeat, float64(t.PeriodMS)/1000)
	for _, c := range t.Changes {
		fmt.Fprintf(w, "  at +%.3fs: %s\n", float64(c.AtMS)/1000, c.What)
	}
}
