package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/topology"
)

// graphCommand prints the deployment's topology as a graph file.
func (a *app) graphCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "graph [--format dot|mermaid|svg|json]",
		Short: "Print the deployment's topology as a Graphviz, Mermaid, SVG or JSON graph",
		Long: `Prints the topology of the deployment (after generate-artefacts): guests,
switches and routers, with an edge per interface labelled with its address.
  kvm-compose graph | dot -Tpng -o lab.png
  kvm-compose graph --format mermaid     # paste into a Markdown file
  kvm-compose graph --format svg > lab.svg   # the GUI's picture`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			data, err := c.Graph(cmd.Context(), name, format)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			_, err = a.stdout.Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "dot, mermaid, svg or json")
	return cmd
}

// inventoryCommand prints the deployment's guests for other tools.
func (a *app) inventoryCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inventory [--format ansible|ssh-config|hosts|json]",
		Short: "Print the deployment's guests as an Ansible inventory, ssh_config, /etc/hosts lines or JSON",
		Long: `Prints every guest with the address other tools reach it at (DHCP leases
too, while the deployment is up):
  kvm-compose inventory > inventory.yaml && ansible-inventory -i inventory.yaml --graph
  kvm-compose inventory --format ssh-config > ssh.cfg && ssh -F ssh.cfg vm1
  kvm-compose inventory --format hosts >> /etc/hosts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			data, err := c.Inventory(cmd.Context(), name, format)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			_, err = a.stdout.Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "ansible", "ansible, ssh-config, hosts or json")
	return cmd
}

// exportCommand saves the deployment's bundle.
func (a *app) exportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export [-o FILE]",
		Short: "Save the deployment as one bundle file: project, state, logs, impairments, image digests",
		Long: `Saves the deployment as a .tar.gz bundle (default: NAME.tar.gz here; -o - for
stdout): the project files, the resolved state, every action's log, the
run-time impairments and the sha256 of every image its guests use. Another
server makes a new deployment of it with kvm-compose import.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			if out == "" {
				out = name + ".tar.gz"
			}
			if out == "-" && isTerminal(a.stdout) {
				return fmt.Errorf("refusing to write a bundle to a terminal: redirect stdout, or give -o FILE")
			}
			stream, err := c.Export(cmd.Context(), name)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			defer stream.Close()
			if out == "-" {
				_, err = io.Copy(a.stdout, stream)
				return err
			}
			n, err := saveFile(out, stream)
			if err != nil {
				return fmt.Errorf("export of %s: %w", name, err)
			}
			fmt.Fprintf(a.stderr, "kvm-compose: exported deployment %s into %s (%d bytes)\n", name, out, n)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the bundle file (default NAME.tar.gz; - is stdout)")
	return cmd
}

// saveFile writes r to path whole or not at all: a broken transfer leaves
// no half bundle behind (a temporary file beside path, renamed once
// complete).
func saveFile(path string, r io.Reader) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = io.Copy(tmp, r); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, err
	}
	if err = tmp.Close(); err != nil {
		return n, err
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), path)
}

// importCommand makes a new deployment from a bundle.
func (a *app) importCommand() *cobra.Command {
	var newName string
	cmd := &cobra.Command{
		Use:   "import FILE|- [--name N]",
		Short: "Make a new deployment from a bundle made by export",
		Long: `Sends the bundle FILE (- reads stdin) to the server, which makes a new deployment of it (named
N, else the bundle's name) with its project files in a new folder of the
server's data folder. Images the bundle's guests use that the server lacks
are named with their digest. Then bring it up:
  kvm-compose -p N generate-artefacts && kvm-compose -p N up`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var in io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			res, err := c.Import(cmd.Context(), in, newName)
			if err != nil {
				return err
			}
			d := res.Deployment
			fmt.Fprintf(a.stdout, "imported deployment %s from bundle of %s: %d project files in %s\n", d.Name, res.From, res.Files, d.ProjectLocation)
			if len(res.Missing) > 0 {
				fmt.Fprintf(a.stdout, "missing images (up needs them):\n  %s\n", strings.Join(res.Missing, "\n  "))
			}
			fmt.Fprintf(a.stdout, "next: kvm-compose -p %s generate-artefacts && kvm-compose -p %s up\n", d.Name, d.Name)
			if len(res.Impairments) > 0 {
				fmt.Fprintf(a.stdout, "then, to set the run-time impairments the lab had at export again:\n")
				for _, line := range netemCommands(d.Name, res.Impairments) {
					fmt.Fprintf(a.stdout, "  %s\n", line)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&newName, "name", "", "the new deployment's name (default: the bundle's)")
	return cmd
}

// netemCommands are the kvm-compose netem lines that set imps again, in
// order of guest and interface.
func netemCommands(name string, imps map[string]map[string]api.Impairment) []string {
	var out []string
	for _, g := range slices.Sorted(maps.Keys(imps)) {
		for _, iface := range slices.Sorted(maps.Keys(imps[g])) {
			imp := imps[g][iface]
			args := []string{"kvm-compose", "-p", name, "netem", g, iface}
			// The description's "delay 20ms loss 1%" are netem's flags.
			if n := topology.NetemOf(imp); !n.IsZero() {
				fs := strings.Fields(n.String())
				for i := 0; i+1 < len(fs); i += 2 {
					args = append(args, "--"+fs[i]+" "+fs[i+1])
				}
			}
			if !imp.Up {
				args = append(args, "--down")
			}
			out = append(out, strings.Join(args, " "))
		}
	}
	return out
}
