package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
)

func (a *app) planCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would change: kvm-compose.yaml now against what is deployed",
		Long: `Show what apply would change: the deployment as it is up against kvm-compose.yaml
as it is now. "+" is added, "-" removed, "~" re-made or, for impairments,
changed in place; each with why. It changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			p, err := c.Plan(cmd.Context(), name)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			printPlan(a.stdout, p)
			return nil
		},
	}
}

func (a *app) applyCommand() *cobra.Command {
	short := "Bring the running deployment to what kvm-compose.yaml says now, touching only what changed (see plan)"
	return &cobra.Command{
		Use:   string(api.CmdApply),
		Short: short,
		Long:  actionHelp(short),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: api.CmdApply}})
		},
	}
}

// opMark is the diff mark of each operation.
var opMark = map[api.ChangeOp]string{api.OpAdd: "+", api.OpRemove: "-", api.OpRemake: "~", api.OpImpair: "~", api.OpUpdate: "~"}

// printPlan writes the plan as a diff, one change a line.
func printPlan(w io.Writer, p api.Plan) {
	defer printTimeline(w, p.Timeline)
	if p.Empty() {
		fmt.Fprintf(w, "no changes: deployment %s is what kvm-compose.yaml says (%d objects)\n", p.Deployment, len(p.Unchanged))
		return
	}
	hosts := map[string]bool{}
	for _, c := range p.Changes {
		hosts[c.Host] = true
	}
	for _, o := range p.Unchanged {
		hosts[o.Host] = true
	}
	counts := map[api.ChangeOp]int{}
	for _, c := range p.Changes {
		counts[c.Op]++
		line := fmt.Sprintf("%s %s %s", opMark[c.Op], c.Kind, c.Name)
		if len(hosts) > 1 && c.Host != "" {
			line += " on " + c.Host
		}
		switch c.Op {
		case api.OpRemake:
			line += " (re-made)"
		case api.OpImpair:
			line += " (impairment, in place)"
		case api.OpUpdate:
			line += " (rewritten in place)"
		}
		if c.Why != "" {
			line += ": " + c.Why
		}
		fmt.Fprintln(w, line)
	}
	var sum []string
	for _, op := range []api.ChangeOp{api.OpAdd, api.OpRemove, api.OpRemake, api.OpImpair, api.OpUpdate} {
		if counts[op] > 0 {
			sum = append(sum, fmt.Sprintf("%d to %s", counts[op], op))
		}
	}
	fmt.Fprintf(w, "plan: %s; %d unchanged. Run kvm-compose apply to do it.\n", strings.Join(sum, ", "), len(p.Unchanged))
}
