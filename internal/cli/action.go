package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

func (a *app) actionCommand(name api.CommandName, short string) *cobra.Command {
	return &cobra.Command{
		Use:   string(name),
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: name}})
		},
	}
}

func (a *app) upCommand() *cobra.Command {
	var opts api.UpOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the deployment's guests and switches up and run their setup scripts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: api.CmdUp, Up: opts}})
		},
	}
	cmd.Flags().BoolVar(&opts.Provision, "provision", false, "re-create guests that are already up")
	cmd.Flags().BoolVar(&opts.RerunScripts, "rerun-scripts", false, "run setup scripts again on guests that already ran them")
	return cmd
}

// runAction starts an action, streams its log and turns its outcome into the
// exit status. The first Ctrl-C cancels the action on the server and keeps
// showing the log while it cleans up; a second one leaves at once.
func (a *app) runAction(ctx context.Context, req api.ActionRequest) error {
	name, c, err := a.target(nil)
	if err != nil {
		return err
	}
	id, err := c.Action(ctx, name, req)
	if err != nil {
		return explain(err, name)
	}
	return a.follow(ctx, c, name, id, req.Command.Name)
}

func (a *app) follow(ctx context.Context, c *client.Client, name, id string, what api.CommandName) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		cancelled := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-a.interrupts:
				if cancelled {
					fmt.Fprintln(a.stderr, "kvm-compose: interrupted again: leaving; the server goes on cleaning up")
					stop()
					return
				}
				cancelled = true
				fmt.Fprintf(a.stderr, "kvm-compose: cancelling %s on the server (Ctrl-C again to leave at once)\n", what)
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if _, err := c.Cancel(cctx, name); err != nil {
					fmt.Fprintln(a.stderr, "kvm-compose: cancel:", err)
				}
				cancel()
			}
		}
	}()
	outcome, err := c.Follow(ctx, id, func(line string) { fmt.Fprintln(a.stdout, showLine(line)) })
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, msg: fmt.Sprintf("stopped following action %s", id)}
		}
		return err
	}
	if outcome.ErrorCode == api.ErrorCodeOK {
		return nil
	}
	msg := fmt.Sprintf("%s failed (error code %d): deployment %s is %s", what, outcome.ErrorCode, name, outcome.EndState)
	if e, err := c.LogEntry(context.WithoutCancel(ctx), id); err == nil && e.Error != "" {
		msg += "\n" + e.Error
	}
	return &exitError{code: outcome.ErrorCode, msg: msg}
}
