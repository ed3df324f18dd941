package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/client"
	"github.com/testbedos/testbedos/internal/logstream"
)

func (a *app) logsCommand() *cobra.Command {
	var follow bool
	var format *outputFormat
	cmd := &cobra.Command{
		Use:   "logs [UUID]",
		Short: "Print an action's log (default: the deployment's last action)",
		Long: `Print an action's log (default: the deployment's last action). With --follow
it streams the log until the action ends, and the exit status is its outcome.
--format json prints the logs index instead: the deployment's (every action
by uuid, with its command, start, error code, end state and duration), or
UUID's entry.
` + exitCodesHelp + " (with --follow)",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if follow && format.json() {
				return errors.New("--follow streams the log; --format json prints the logs index: give one of them")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if format.json() {
				return a.printLogIndex(cmd.Context(), c, args)
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
					return a.explain(cmd.Context(), c, err, name)
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
			return a.printLog(cmd.Context(), c, id)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the action ends; the exit status is its outcome")
	format = formatFlag(cmd)
	return cmd
}

// printLogIndex prints, as JSON, the entry of the action args names, else
// the deployment's whole logs index.
func (a *app) printLogIndex(ctx context.Context, c *client.Client, args []string) error {
	if len(args) == 1 {
		e, err := c.LogEntry(ctx, args[0])
		if err != nil {
			return err
		}
		return a.printJSON(e)
	}
	name, err := a.deploymentName()
	if err != nil {
		return err
	}
	idx, err := c.Logs(ctx, name)
	if err != nil {
		return a.explain(ctx, c, err, name)
	}
	return a.printJSON(idx)
}

// printLog prints the whole log of action id, line by line as showLine
// does, however large it is and however long its lines; a transfer that
// breaks off is an error.
func (a *app) printLog(ctx context.Context, c *client.Client, id string) error {
	body, err := c.OpenLog(ctx, id)
	if err != nil {
		return err
	}
	defer body.Close()
	r := bufio.NewReaderSize(body, logstream.MaxMessage)
	guest := a.guestOutput(a.stdout)
	out := bufio.NewWriterSize(guest, 64<<10)
	lineStart := true
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) > 0 {
			if lineStart {
				text, nl := strings.CutSuffix(string(chunk), "\n")
				out.WriteString(showLine(text))
				if nl {
					out.WriteByte('\n')
				}
			} else {
				out.Write(chunk)
			}
		}
		lineStart = err == nil
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if ferr := errors.Join(out.Flush(), guest.Close()); err == nil {
				err = ferr
			}
			if err != nil {
				return fmt.Errorf("log %s: %w", id, err)
			}
			return nil
		}
	}
}

// showLine is how the CLI prints a log line, live or not: its timestamp
// becomes the local time of day with milliseconds.
func showLine(line string) string {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok {
		return line
	}
	t, err := time.Parse(logstream.TimeLayout, ts)
	if err != nil {
		return line
	}
	return t.Local().Format(timeOfDay) + " " + rest
}
