package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
)

// fanout holds exec's flags for running one command in many guests:
// exec --all -- CMD, exec --guests a,b -- CMD.
type fanout struct {
	all    bool
	guests []string
	json   bool
}

func (f *fanout) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.all, "all", false, "run the command in every guest at once (no GUEST before --)")
	cmd.Flags().StringSliceVar(&f.guests, "guests", nil, "run the command in these guests at once: --guests a,b (no GUEST before --)")
	cmd.Flags().BoolVar(&f.json, "json", false, "with --all or --guests: print the results as JSON")
}

// active reports whether exec runs in many guests.
func (f *fanout) active() bool { return f.all || len(f.guests) > 0 }

// run runs argv in the guests and prints a table of guest, exit code and
// output (or JSON). The exit status is 0 when the command ran and
// succeeded in every guest, else 1.
// Every guest gets the same standard input, read once (none with noStdin).
func (a *app) runFanout(cmd *cobra.Command, f *fanout, args []string, secs int, noStdin bool) error {
	if f.all && len(f.guests) > 0 {
		return errors.New("give --all or --guests, not both")
	}
	if dash := cmd.ArgsLenAtDash(); dash > 0 {
		return fmt.Errorf("no GUEST before -- with --all or --guests, got %q: kvm-compose exec --all -- CMD [ARG…]", args[:dash])
	}
	if len(args) == 0 {
		return errors.New("no command given: kvm-compose exec --all -- CMD [ARG…]")
	}
	name, c, err := a.target(nil)
	if err != nil {
		return err
	}
	req := api.FanoutExecRequest{Guests: f.guests, Command: args, TimeoutS: secs}
	if !noStdin {
		if req.Stdin, err = a.execStdin(); err != nil {
			return err
		}
	}
	res, err := c.ExecAll(cmd.Context(), name, req)
	if err != nil {
		return a.explain(cmd.Context(), c, err, name)
	}
	failed := 0
	for _, r := range res.Results {
		if r.ExitCode != 0 || r.Error != "" {
			failed++
		}
	}
	if f.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GUEST\tEXIT\tOUTPUT")
		for _, r := range res.Results {
			out := r.Stdout + r.Stderr
			code := fmt.Sprint(r.ExitCode)
			switch {
			case r.Error != "":
				out, code = r.Error, "-"
			case r.TimedOut:
				code = "timeout"
			}
			out = a.guestText(a.stdout, strings.TrimRight(out, "\n"))
			lines := strings.Split(out, "\n")
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Guest, code, lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(tw, "\t\t%s\n", l)
			}
		}
		tw.Flush()
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("the command failed in %d of %d guests", failed, len(res.Results))}
	}
	return nil
}
