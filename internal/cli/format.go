package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// outputFormat is the --format of a listing: a table for people (text) or
// the server's JSON for programs (json).
type outputFormat string

const (
	formatText outputFormat = "text"
	formatJSON outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "text|json" }

func (f *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case formatText, formatJSON:
		*f = outputFormat(s)
		return nil
	}
	return fmt.Errorf("give text or json")
}

// json reports whether the listing is to be printed as JSON.
func (f *outputFormat) json() bool { return *f == formatJSON }

// formatFlag adds --format text|json to a listing verb.
func formatFlag(cmd *cobra.Command) *outputFormat {
	f := formatText
	cmd.Flags().Var(&f, "format", "text (a table) or json")
	return &f
}

// printJSON writes v as indented JSON and a newline: what every listing
// prints with --format json.
func (a *app) printJSON(v any) error {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, string(out))
	return err
}
