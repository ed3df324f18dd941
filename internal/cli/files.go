package cli

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// maxPutFile bounds what files put reads: the server takes 1 MiB a file.
const maxPutFile = 1 << 20

// filesCommand is "kvm-compose files list|get|put|rm": the project folder
// of a deployment as the server sees it, for a user on another machine
// than the server's (the GUI edits files the same way).
func (a *app) filesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "files",
		Short: "List, read, write or remove files of the deployment's project folder on the server",
		Long: `The project folder of the deployment (--project-name, else the folder's name)
as the server holds it. PATH is relative to that folder, with slashes
(scripts/setup.sh); hidden files and paths out of the folder are refused.`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the project folder's files: path, size, executable",
		Args:  cobra.NoArgs,
	}
	listFormat := formatFlag(list)
	list.RunE = func(cmd *cobra.Command, args []string) error {
		name, c, err := a.target(nil)
		if err != nil {
			return err
		}
		files, err := c.ProjectFiles(cmd.Context(), name)
		if err != nil {
			return a.explain(cmd.Context(), c, err, name)
		}
		if listFormat.json() {
			return a.printJSON(files)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tSIZE\tEXECUTABLE")
		for _, f := range files.Files {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", f.Path, f.Size, ifYes(f.Executable))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if files.Truncated {
			fmt.Fprintln(a.stdout, "(the folder holds more files than the listing shows)")
		}
		return nil
	}
	var out string
	get := &cobra.Command{
		Use:   "get PATH",
		Short: "Print a file of the project folder (-o FILE writes it to FILE)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			data, err := c.ReadProjectFile(cmd.Context(), name, args[0])
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			if out != "" && out != "-" {
				return os.WriteFile(out, data, 0o644)
			}
			_, err = a.stdout.Write(data)
			return err
		},
	}
	get.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	put := &cobra.Command{
		Use:   "put PATH [FILE|-]",
		Short: "Write a file of the project folder from FILE (default: PATH here; - reads standard input)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			src := args[0]
			if len(args) == 2 {
				src = args[1]
			}
			var r io.Reader = a.stdin
			if src != "-" {
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			data, err := io.ReadAll(io.LimitReader(r, maxPutFile+1))
			if err != nil {
				return err
			}
			if len(data) > maxPutFile {
				return fmt.Errorf("%s is larger than the server takes (%d KiB)", src, maxPutFile>>10)
			}
			f, err := c.WriteProjectFile(cmd.Context(), name, args[0], data)
			if err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			fmt.Fprintf(a.stdout, "wrote %s (%d bytes%s) into deployment %s's project folder\n", f.Path, f.Size, map[bool]string{true: ", executable"}[f.Executable], name)
			return nil
		},
	}
	rm := &cobra.Command{
		Use:   "rm PATH",
		Short: "Remove a file of the project folder (never kvm-compose.yaml)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := a.target(nil)
			if err != nil {
				return err
			}
			if err := c.DeleteProjectFile(cmd.Context(), name, args[0]); err != nil {
				return a.explain(cmd.Context(), c, err, name)
			}
			fmt.Fprintf(a.stdout, "removed %s from deployment %s's project folder\n", args[0], name)
			return nil
		},
	}
	cmd.AddCommand(list, get, put, rm)
	return cmd
}

func ifYes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
