package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// The original kvm-compose's verbs and flags that do not clash with ours:
// cloud-images, deployment reset-state, up --reapply-acl, snapshot --all
// (snapshotall.go), and the global --no-ask and --verbosity.

// Verbosity levels of --verbosity, the original's log levels.
var verbosities = []string{"error", "warn", "info", "debug", "trace"}

// bindOriginalFlags adds --no-ask and --verbosity to the root command.
func (a *app) bindOriginalFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.BoolVar(&a.noAsk, "no-ask", false, "answer yes to every question (the CLI asks only before deployment reset-state brings a deployment down)")
	pf.StringVar(&a.verbosity, "verbosity", "info", "how much to print: error or warn print only the outcome of an action, info (the default), debug and trace its whole log too")
	prev := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		found := false
		for _, v := range verbosities {
			found = found || strings.EqualFold(a.verbosity, v)
		}
		if !found {
			return fmt.Errorf("--verbosity %q: use one of %s", a.verbosity, strings.Join(verbosities, ", "))
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// quiet reports whether --verbosity keeps an action's log lines back.
func (a *app) quiet() bool {
	v := strings.ToLower(a.verbosity)
	return v == "error" || v == "warn"
}

// confirm asks a yes/no question on standard error; --no-ask answers yes.
// Without an answer to read (standard input is not a terminal) it refuses,
// naming --no-ask.
func (a *app) confirm(question string) error {
	if a.noAsk {
		return nil
	}
	if a.ask != nil {
		if a.ask(question) {
			return nil
		}
		return fmt.Errorf("not confirmed")
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return fmt.Errorf("%s: no terminal to answer on; give --no-ask to go ahead", question)
	}
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a == "y" || a == "yes" {
		return nil
	}
	return fmt.Errorf("not confirmed")
}

// resetStateCommand is the original's deployment reset-state: it makes a
// deployment down again. Here state never lies (a crash marks an action
// interrupted), so resetting means: cancel a running action, then bring
// the deployment down, which removes what the daemon's record holds.
func (a *app) resetStateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reset-state [NAME]",
		Short: "Bring a deployment back to down: cancel its running action, then run down (asks first unless --no-ask)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			d, err := c.Deployment(ctx, name)
			if err != nil {
				return a.explain(ctx, c, err, name)
			}
			if d.State.Is(api.StateDown) {
				fmt.Fprintf(a.stdout, "deployment %s is already down\n", name)
				return nil
			}
			if err := a.confirm(fmt.Sprintf("deployment %s is %s: bring it down (its guests and switches are removed)?", name, d.State)); err != nil {
				return err
			}
			if d.State.Is(api.StateRunning) {
				if _, err := c.Cancel(ctx, name, ""); err != nil && client.StatusOf(err) != http.StatusConflict {
					return err
				}
				if err := waitNotRunning(ctx, c, name); err != nil {
					return err
				}
			}
			return a.runActionOn(ctx, c, name, api.ActionRequest{Command: api.Command{Name: api.CmdDown}})
		},
	}
}

// waitNotRunning waits until the deployment's action has ended.
func waitNotRunning(ctx context.Context, c *client.Client, name string) error {
	for {
		d, err := c.Deployment(ctx, name)
		if err != nil || !d.State.Is(api.StateRunning) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// reapplyACL is the original's up --reapply-acl: the running deployment
// takes the ACL kvm-compose.yaml says now. It is apply, refused when
// kvm-compose.yaml changes more than the ACL.
func (a *app) reapplyACL(ctx context.Context) error {
	name, c, err := a.target(nil)
	if err != nil {
		return err
	}
	p, err := c.Plan(ctx, name)
	if err != nil {
		return a.explain(ctx, c, err, name)
	}
	var other []string
	for _, ch := range p.Changes {
		if ch.Kind != api.KindACL {
			other = append(other, fmt.Sprintf("%s %s %s", ch.Op, ch.Kind, ch.Name))
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("up --reapply-acl changes only the ACL, but kvm-compose.yaml changes more: %s; see kvm-compose plan, and run kvm-compose apply to make all of it", strings.Join(other, ", "))
	}
	if p.Empty() {
		fmt.Fprintf(a.stdout, "the ACL of deployment %s is already what kvm-compose.yaml says\n", name)
		return nil
	}
	return a.runActionOn(ctx, c, name, api.ActionRequest{Command: api.Command{Name: api.CmdApply}})
}
