package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// clusterCommand is `kvm-compose cluster status`: the main and every
// joined client with its last heartbeat.
func (a *app) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Show the cluster of the main host"}
	var format *outputFormat
	status := &cobra.Command{
		Use:   "status",
		Short: "List the cluster's hosts: the main and every joined client with its last heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			cfg, err := c.ClusterConfig(cmd.Context())
			if err != nil {
				return err
			}
			members, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			if format.json() {
				return a.printJSON(struct {
					Hosts   any `json:"hosts"`
					Members any `json:"members"`
				}{cfg.Hosts, members})
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tIP\tCPUS\tMEMORY_MB\tLAST_HEARTBEAT\tMISSES")
			for _, h := range cfg.Hosts {
				if h.IsMainHost {
					fmt.Fprintf(w, "%s\tmain\t%s\t%d\t%d\t-\t-\n", h.Name, h.IP, h.CPUs, h.MemoryMB)
				}
			}
			for _, m := range members {
				last := "never"
				if m.LastHeartbeat != nil {
					last = m.LastHeartbeat.Local().Format(time.RFC3339) + fmt.Sprintf(" (%s ago)", time.Since(*m.LastHeartbeat).Round(time.Second))
				}
				fmt.Fprintf(w, "%s\tclient\t%s\t%d\t%d\t%s\t%d\n", m.Name, m.Host.IP, m.Host.CPUs, m.Host.MemoryMB, last, m.Misses)
			}
			return w.Flush()
		},
	}
	format = formatFlag(status)
	cmd.AddCommand(status)
	return cmd
}
