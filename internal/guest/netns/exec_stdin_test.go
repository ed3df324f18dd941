package netns

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// echo x | kvm-compose exec web -- cat: the guest's command reads what the
// exec request carried, and a command given none reads end of input.
func TestExecPassesStdin(t *testing.T) {
	nettest.RequireRoot(t)
	prefix := nettest.Prefix(t)
	p := benchbase.Plan{Prefix: prefix, Bridge: prefix + "br", N: 1}
	st := stateFor(p)
	d := New(Options{})
	upBridge(t, p)
	upGuests(t, d, st, &guesttest.Log{})
	dep := guest.LocalDeployment(st)
	for _, tc := range []struct {
		name  string
		stdin *strings.Reader
		want  string
	}{{"stdin", strings.NewReader("x\n"), "x\n"}, {"none", nil, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := guest.Command{Argv: []string{"cat"}, Stdout: &out, Stderr: &out}
			if tc.stdin != nil {
				cmd.Stdin = tc.stdin
			}
			code, err := d.Exec(context.Background(), dep, &st.Guests[0], cmd)
			if err != nil || code != 0 || out.String() != tc.want {
				t.Fatalf("cat: %d, %v, printed %q; want %q", code, err, out.String(), tc.want)
			}
		})
	}
}
