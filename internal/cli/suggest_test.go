package cli

import (
	"strings"
	"testing"
)

// A mistyped verb or flag exits non-zero and names the nearest one; a word
// that is no typo of any verb suggests nothing.
func TestUnknownVerbsAndFlagsSuggestTheNearest(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" wants no suggestion
	}{
		{[]string{"deployment", "lsit"}, "did you mean: kvm-compose deployment list?"},
		{[]string{"snapshot", "restor", "web", "s1"}, "kvm-compose snapshot restore?"},
		{[]string{"cluster", "stauts"}, "kvm-compose cluster status?"},
		{[]string{"donw"}, "did you mean: kvm-compose down?"},
		{[]string{"ps"}, ""},
		{[]string{"help", "deployment", "lsit"}, "did you mean: kvm-compose deployment list?"},
		{[]string{"completion", "bsh"}, "did you mean: kvm-compose completion bash or zsh?"},
		{[]string{"up", "--provison"}, "did you mean --provision?"},
		{[]string{"exec", "--timout", "5s", "web", "--", "ls"}, "did you mean --timeout?"},
		{[]string{"deployment", "list", "--projct-name", "x"}, "did you mean --project-name?"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out := run(t, freeTCP(t), nil, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero:\n%s", out)
			}
			if tc.want == "" {
				if strings.Contains(out, "did you mean") {
					t.Fatalf("suggests something for a word that is no typo:\n%s", out)
				}
				return
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
	// A group alone still shows its verbs, and help its help.
	for _, args := range [][]string{{"deployment"}, {"help", "deployment"}, {"help"}} {
		if code, out := run(t, freeTCP(t), nil, args...); code != 0 || !strings.Contains(out, "Available Commands") {
			t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
}

func TestNearest(t *testing.T) {
	verbs := []string{"up", "down", "plan", "apply", "logs", "list", "info", "create", "destroy"}
	for typed, want := range map[string]string{
		"lsit": "list", "ps": "", "pu": "up", "dwon": "down", "crate": "create", "des": "destroy", "x": "",
	} {
		got := strings.Join(nearest(typed, verbs), ",")
		if got != want {
			t.Errorf("nearest(%q) = %q, want %q", typed, got, want)
		}
	}
}
