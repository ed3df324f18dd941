package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

func (a *app) eventsCommand() *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the server's events (actions, deployment states, cluster members) as they happen",
		Long: `Print one line per event of the server (time, type, deployment, details) as it
happens, until Ctrl-C. --json prints each event's JSON as the server sent it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.printEvents(cmd.Context(), c, raw)
		},
	}
	cmd.Flags().BoolVar(&raw, "json", false, "print the raw JSON of every event, one per line")
	return cmd
}

func (a *app) printEvents(ctx context.Context, c *client.Client, raw bool) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-a.interrupts:
			stop()
		}
	}()
	// The error code of each action that ended, until its state event
	// (which follows) is printed: a cancel's state reads cancelled(up).
	ended := map[string]int{}
	err := c.Events(ctx, func(e api.Event, data json.RawMessage) error {
		if raw {
			_, err := fmt.Fprintf(a.stdout, "%s\n", a.guestText(a.stdout, string(data)))
			return err
		}
		e.Error = a.guestText(a.stdout, e.Error)
		if e.Type == api.EventActionEnded && e.ErrorCode != nil {
			ended[e.UUID] = *e.ErrorCode
		}
		err := writeEvent(a.stdout, e, ended)
		if e.Type == api.EventDeploymentState {
			delete(ended, e.UUID)
		}
		return err
	})
	switch {
	case ctx.Err() != nil:
		return nil // Ctrl-C: the normal way out
	case errors.Is(err, client.ErrServerStopped):
		return fmt.Errorf("%w: events end here; run kvm-compose events again once it is back", err)
	case errors.Is(err, client.ErrEventsLost):
		return fmt.Errorf("%w: the terminal read too slowly; run kvm-compose events again", err)
	}
	return err
}

// writeEvent prints one event as "time type deployment details"; ended
// holds the error codes of actions that ended, by uuid.
func writeEvent(w io.Writer, e api.Event, ended map[string]int) error {
	var details []string
	switch e.Type {
	case api.EventActionStarted:
		details = append(details, commandName(e.Command)+" started")
	case api.EventActionEnded:
		details = append(details, commandName(e.Command)+" "+endWord(e.ErrorCode))
		if e.State != nil && e.ErrorCode != nil {
			details = append(details, "deployment is "+e.State.TextAfter(*e.ErrorCode))
		}
		if e.Error != "" && e.ErrorCode != nil && *e.ErrorCode == api.ErrorCodeFailed {
			details = append(details, e.Error)
		}
	case api.EventDeploymentState:
		if e.State != nil {
			st := e.State.String()
			if code, ok := ended[e.UUID]; ok {
				st = e.State.TextAfter(code)
			}
			details = append(details, st)
		}
	}
	if e.Member != "" {
		details = append(details, "member "+e.Member)
	}
	if e.UUID != "" {
		details = append(details, "action "+e.UUID)
	}
	who := e.Deployment
	if who == "" {
		who = "-"
	}
	_, err := fmt.Fprintf(w, "%s %-16s %s %s\n", e.Time.Local().Format(timeOfDay), e.Type, who, strings.Join(details, "; "))
	return err
}

func commandName(c *api.Command) string {
	if c == nil {
		return "action"
	}
	return c.String()
}

// endWord says how an action ended, by its error code.
func endWord(code *int) string {
	if code == nil {
		return "ended"
	}
	switch *code {
	case api.ErrorCodeOK:
		return "succeeded"
	case api.ErrorCodeCancelled:
		return "cancelled"
	case api.ErrorCodeInterrupted:
		return "interrupted"
	}
	return fmt.Sprintf("failed (error code %d)", *code)
}
