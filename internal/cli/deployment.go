package cli

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

func (a *app) deploymentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deployment",
		Short: "Create, list, inspect and destroy deployments",
	}
	var force bool
	destroy := &cobra.Command{
		Use:   "destroy [NAME]",
		Short: "Forget a deployment (it must be down unless --force)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(args)
			if err != nil {
				return err
			}
			if err := c.DeleteDeployment(cmd.Context(), name, force); err != nil {
				return a.explainDestroy(cmd.Context(), c, name, force, err)
			}
			fmt.Fprintf(a.stdout, "deployment %s destroyed\n", name)
			return nil
		},
	}
	destroy.Flags().BoolVar(&force, "force", false, "forget the deployment even if it is not down")
	var asJSON bool
	var infoFormat, listFormat *outputFormat
	info := &cobra.Command{
		Use:   "info [NAME]",
		Short: "Show a deployment and its guests with kind, host, IPs and status",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(args)
			if err != nil {
				return err
			}
			return a.deploymentInfo(cmd.Context(), c, name, asJSON || infoFormat.json())
		},
	}
	infoFormat = formatFlag(info)
	info.Flags().BoolVar(&asJSON, "json", false, "the same as --format json")
	info.Flags().MarkHidden("json")
	list := &cobra.Command{
		Use:   "list",
		Short: "List deployments with their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			deps, err := c.Deployments(cmd.Context())
			if err != nil {
				return err
			}
			if listFormat.json() {
				return a.printJSON(api.DeploymentList{Deployments: deps})
			}
			names := make([]string, 0, len(deps))
			for n := range deps {
				names = append(names, n)
			}
			sort.Strings(names)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tPROJECT\tLAST ACTION")
			for _, n := range names {
				d := deps[n]
				last := "-"
				if d.LastActionUUID != nil {
					last = *d.LastActionUUID
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, a.stateText(cmd.Context(), c, d), d.ProjectLocation, last)
			}
			return tw.Flush()
		},
	}
	listFormat = formatFlag(list)
	cmd.AddCommand(
		&cobra.Command{
			Use:   "create [NAME]",
			Short: "Register the project folder as a deployment (NAME defaults to --project-name or the folder name)",
			Args:  cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				name, c, err := a.target(args)
				if err != nil {
					return err
				}
				dir, err := a.projectDir()
				if err != nil {
					return err
				}
				d, err := c.CreateDeployment(cmd.Context(), name, dir)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deployment %s created for %s\n", d.Name, d.ProjectLocation)
				return nil
			},
		},
		list,
		info,
		destroy,
		a.resetStateCommand(),
	)
	return cmd
}

// explainDestroy turns the server's 409 for a deployment that is not down
// (whose message speaks of the API's ?force=true) into what to type here.
func (a *app) explainDestroy(ctx context.Context, c *client.Client, name string, force bool, err error) error {
	if client.StatusOf(err) != http.StatusConflict || force {
		return a.explain(ctx, c, err, name)
	}
	d, derr := c.Deployment(ctx, name)
	if derr != nil || d.State.Is(api.StateRunning) {
		return err // running: the server says to cancel it first
	}
	return fmt.Errorf("deployment %s is %s: run kvm-compose down first, "+
		"or kvm-compose deployment destroy %s --force to forget it anyway", name, d.State, name)
}
