package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// exitCodesHelp ends the help of every verb whose exit status is an
// action's outcome.
const exitCodesHelp = "exit codes: 0 success, 1 failed, 2 cancelled, 3 interrupted"

// actionHelp is the Long help of an action verb: its summary, how Ctrl-C
// works and the exit codes.
func actionHelp(short string) string {
	return short + ".\n\nThe log streams live; Ctrl-C cancels the action on the server (again: leave at once).\n" + exitCodesHelp
}

func (a *app) actionCommand(name api.CommandName, short string) *cobra.Command {
	return &cobra.Command{
		Use:   string(name),
		Short: short,
		Long:  actionHelp(short),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: name}})
		},
	}
}

func (a *app) upCommand() *cobra.Command {
	var opts api.UpOptions
	var reapplyACL bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the deployment's guests and switches up and run their setup scripts",
		Long:  actionHelp("Bring the deployment's guests and switches up and run their setup scripts"),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if reapplyACL {
				return a.reapplyACL(cmd.Context())
			}
			return a.runAction(cmd.Context(), api.ActionRequest{Command: api.Command{Name: api.CmdUp, Up: opts}})
		},
	}
	cmd.Flags().BoolVar(&opts.Provision, "provision", false, "re-create guests that are already up")
	cmd.Flags().BoolVar(&opts.RerunScripts, "rerun-scripts", false, "run setup scripts again on guests that already ran them")
	cmd.Flags().BoolVar(&reapplyACL, "reapply-acl", false, "the original's: give the running deployment the ACL kvm-compose.yaml says now (apply, refused when more than the ACL changed)")
	cmd.MarkFlagsMutuallyExclusive("reapply-acl", "provision")
	cmd.MarkFlagsMutuallyExclusive("reapply-acl", "rerun-scripts")
	cmd.Flags().BoolVar(&opts.Timeline, "timeline", false, "run the timeline of kvm-compose.yaml once the deployment is up")
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
	return a.runActionOn(ctx, c, name, req)
}

// runActionOn is runAction on deployment name.
func (a *app) runActionOn(ctx context.Context, c *client.Client, name string, req api.ActionRequest) error {
	req, err := a.generateFirst(ctx, c, name, req)
	if err != nil {
		return err
	}
	id, err := c.Action(ctx, name, req)
	if err != nil {
		return a.explain(ctx, c, err, name)
	}
	return a.follow(ctx, c, name, id, req.Command.Name)
}

func (a *app) follow(ctx context.Context, c *client.Client, name, id string, what api.CommandName) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	pr := a.newProgress()
	go func() {
		cancelled := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-a.interrupts:
				if cancelled {
					pr.say(a.stderr, "kvm-compose: interrupted again: leaving; the server goes on cleaning up\n")
					stop()
					return
				}
				cancelled = true
				pr.say(a.stderr, "kvm-compose: cancelling %s on the server (Ctrl-C again to leave at once)\n", what)
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				// Our own uuid: a late Ctrl-C must not cancel a later action.
				if _, err := c.Cancel(cctx, name, id); err != nil {
					pr.say(a.stderr, "kvm-compose: cancel: %v\n", err)
				}
				cancel()
			}
		}
	}()
	outcome, err := c.Follow(ctx, id, func(line string) {
		if !a.quiet() {
			pr.line(showLine(line))
		}
	})
	pr.done()
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, msg: fmt.Sprintf("stopped following action %s", id)}
		}
		// The server began to stop between starting the action and our
		// follow: it records the action as interrupted, as below.
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable {
			o := api.Outcome{ErrorCode: api.ErrorCodeInterrupted, EndState: api.FailedState(api.Command{Name: what})}
			if what.KeepsState() {
				o.EndState = api.StateIsUp // a snapshot, power change or time line never changes the state
			}
			return &exitError{code: o.ErrorCode, msg: outcomeMessage(what, name, o, "")}
		}
		return err
	}
	if outcome.ErrorCode == api.ErrorCodeOK {
		return nil
	}
	var detail string
	if outcome.ErrorCode == api.ErrorCodeFailed {
		if e, err := c.LogEntry(context.WithoutCancel(ctx), id); err == nil {
			detail = e.Error
		}
	}
	return &exitError{code: outcome.ErrorCode, msg: outcomeMessage(what, name, outcome, detail)}
}

// outcomeMessage says in one line how an action ended that did not succeed;
// detail is the recorded error of a failed one. A cancel or an interrupt is
// not a failure: it says so, without the error of every guest it stopped.
func outcomeMessage(what api.CommandName, name string, o api.Outcome, detail string) string {
	switch o.ErrorCode {
	case api.ErrorCodeCancelled:
		return fmt.Sprintf("%s cancelled: deployment %s is %s", what, name, o.EndState.TextAfter(o.ErrorCode))
	case api.ErrorCodeInterrupted:
		return fmt.Sprintf("%s interrupted: the server stopped while it ran; deployment %s is %s (run it again once the server is back)", what, name, o.EndState)
	}
	msg := fmt.Sprintf("%s failed (error code %d): deployment %s is %s", what, o.ErrorCode, name, o.EndState)
	if detail != "" {
		msg += "\n" + detail
	}
	return msg
}

// timeOfDay is how the CLI shows a time: log lines and events alike.
const timeOfDay = "15:04:05.000"
