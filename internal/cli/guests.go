package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/client"
)

// deploymentInfo prints a deployment and its guests with kind, host, IPs
// and status; asJSON prints both as the server answered them.
func (a *app) deploymentInfo(ctx context.Context, c *client.Client, name string, asJSON bool) error {
	d, err := c.Deployment(ctx, name)
	if err != nil {
		return a.explain(ctx, c, err, name)
	}
	raw, gerr := c.GuestsJSON(ctx, name)
	noGuests := client.StatusOf(gerr) == http.StatusNotFound
	// A server without the engine knows the deployment but not its guests.
	unknown := client.StatusOf(gerr) == http.StatusServiceUnavailable
	if gerr != nil && !noGuests && !unknown {
		return gerr
	}
	if asJSON {
		switch {
		case unknown:
			raw = json.RawMessage("null")
		case raw == nil:
			raw = json.RawMessage("[]")
		}
		out, _ := json.MarshalIndent(struct {
			Deployment any             `json:"deployment"`
			Guests     json.RawMessage `json:"guests"`
		}{d, raw}, "", "  ")
		fmt.Fprintln(a.stdout, string(out))
		return nil
	}
	last := "-"
	if d.LastActionUUID != nil {
		last = *d.LastActionUUID
	}
	fmt.Fprintf(a.stdout, "deployment %s: %s\nproject:     %s\nlast action: %s\n", d.Name, a.stateText(ctx, c, d), d.ProjectLocation, last)
	if unknown {
		fmt.Fprintf(a.stdout, "guests unknown: %v\n", gerr)
		return nil
	}
	if noGuests {
		fmt.Fprintf(a.stdout, "no guests yet: %v\n", gerr)
		return nil
	}
	var guests []api.Guest
	if err := json.Unmarshal(raw, &guests); err != nil {
		return fmt.Errorf("guests of %s: %w", name, err)
	}
	if len(guests) == 0 {
		fmt.Fprintln(a.stdout, "no guests")
		return nil
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GUEST\tKIND\tHOST\tSTATUS\tINTERFACES")
	for _, g := range guests {
		var ifs []string
		for _, i := range g.Interfaces {
			ip := i.IP
			switch {
			case ip == "":
				ip = "no address"
			case i.Leased:
				ip += " (leased)"
			}
			ifs = append(ifs, fmt.Sprintf("%s %s on %s", i.Name, ip, i.Switch))
		}
		if len(ifs) == 0 {
			ifs = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Name, g.Kind, g.Host, g.Status, strings.Join(ifs, ", "))
	}
	return tw.Flush()
}
