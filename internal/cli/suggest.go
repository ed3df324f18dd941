package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// suggestVerbs makes every command that only groups others (the root,
// deployment, snapshot, cluster…) refuse a word it does not know, naming
// the nearest verb, instead of printing its help and exiting 0; without a
// word it prints its help. Flags get the same: an unknown one names the
// nearest flag of the command. Cobra's own suggestions are off: they match
// "ps" with "up".
func suggestVerbs(root *cobra.Command) {
	root.DisableSuggestions = true
	root.SetFlagErrorFunc(flagError)
	// Cobra adds "completion" when it runs; add it now so that it is
	// walked too.
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 && cmd.HasSubCommands() {
				return unknownVerb(cmd, rest)
			}
			return cmd.Help()
		},
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = unknownVerb
			c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownVerb refuses any word after a group command.
func unknownVerb(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if near := nearest(args[0], names); len(near) > 0 {
		msg += "\ndid you mean: " + cmd.CommandPath() + " " + strings.Join(near, " or ") + "?"
	}
	return fmt.Errorf("%s\nrun '%s --help' for its verbs", msg, cmd.CommandPath())
}

// flagError adds the nearest known flag to pflag's "unknown flag".
func flagError(cmd *cobra.Command, err error) error {
	if s := flagSuggestion(cmd, err); s != "" {
		return fmt.Errorf("%w\ndid you mean %s?", err, s)
	}
	return err
}

// flagSuggestion is the nearest flag of cmd to the unknown one err names
// ("--timeout" or "-w"), or "".
func flagSuggestion(cmd *cobra.Command, err error) string {
	var ne *pflag.NotExistError
	if !errors.As(err, &ne) {
		return ""
	}
	var names []string
	seen := map[string]bool{}
	add := func(f *pflag.Flag) {
		if !f.Hidden && !seen[f.Name] {
			seen[f.Name] = true
			names = append(names, f.Name)
		}
	}
	cmd.Flags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	typed := ne.GetSpecifiedName()
	if typed == "" {
		// A short flag: suggest the long ones it may have meant.
		typed = ne.GetSpecifiedShortnames()
	}
	near := nearest(typed, names)
	for i, n := range near {
		near[i] = "--" + n
	}
	return strings.Join(near, " or ")
}

// nearest are the candidates close to typed: within one edit (a swap of
// two neighbours counts as one) for words up to four letters, two beyond,
// or starting with typed when it has two letters or more. A short word two
// edits away ("ps" and "up") is a different word, not a typo.
func nearest(typed string, candidates []string) []string {
	typed = strings.ToLower(typed)
	limit := 1
	if len(typed) > 4 {
		limit = 2
	}
	type scored struct {
		name string
		d    int
	}
	var hits []scored
	for _, c := range candidates {
		d := editDistance(typed, strings.ToLower(c))
		switch {
		case d <= limit:
			hits = append(hits, scored{c, d})
		case len(typed) >= 2 && strings.HasPrefix(strings.ToLower(c), typed):
			hits = append(hits, scored{c, limit + 1})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].d < hits[j].d })
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		if len(out) == 3 {
			break
		}
		out = append(out, h.name)
	}
	return out
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
