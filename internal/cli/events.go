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
	err := c.Events(ctx, func(e api.Event, data json.RawMessage) error {
		if raw {
			_, err := fmt.Fprintf(a.stdout, "%s\n", a.guestText(a.stdout, string(data)))
			return err
		}
		e.Error = a.guestText(a.stdout, e.Error)
		return writeEvent(a.stdout, e)
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

// writeEvent prints one event as "time type deployment details".
func writeEvent(w io.Writer, e api.Event) error {
	var details []string
	switch e.Type {
	case api.EventActionStarted:
		details = append(details, commandName(e.Command)+" started")
	case api.EventActionEnded:
		details = append(details, commandName(e.Command)+" "+endWord(e.ErrorCode))
		if e.State != nil {
			details = append(details, "deployment is "+e.State.String())
		}
		if e.Error != "" && e.ErrorCode != nil && *e.ErrorCode == api.ErrorCodeFailed {
			details = append(details, e.Error)
		}
	case api.EventDeploymentState:
		if e.State != nil {
			details = append(details, e.State.String())
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
