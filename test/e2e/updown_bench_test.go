package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/net/nettest"
)

// BenchmarkUpDownThroughServer measures up and down of N netns guests as a
// user sees them: from the POST of the action to the outcome the server
// sends when the deployment's state is written (up, or down with every veth
// gone). In the same iterations, interleaved, plain `ip -batch` scripts do
// the same work (the floor); it reports both and their ratio:
//
//	up-ms, ipbatch-up-ms, up-x-of-ipbatch
//	down-ms, ipbatch-down-ms, down-x-of-ipbatch
//
//	go test -run '^$' -bench UpDownThroughServer -benchtime 3x ./test/e2e/
func BenchmarkUpDownThroughServer(b *testing.B) {
	nettest.RequireRoot(b)
	for _, size := range []struct{ guests, switches int }{{200, 1}, {1000, 4}} {
		b.Run(fmt.Sprintf("guests=%d,switches=%d", size.guests, size.switches), func(b *testing.B) {
			benchThroughServer(b, size.guests, size.switches)
		})
	}
}

func benchThroughServer(b *testing.B, n, switches int) {
	ctx := context.Background()
	s := startServer(b)
	_, run := benchLab(b, s, benchbase.Lab(n, switches))
	prefix := nettest.Prefix(b)
	b.Cleanup(func() { nettest.RemoveAll(prefix) })
	floor := benchbase.FloorOver(prefix, n, switches)
	subject := benchbase.UpDown{Up: func() error { return run(api.CmdUp) }, Down: func() error { return run(api.CmdDown) }}
	benchbase.Compare(b, subject, floor.Steps(ctx), nil)
}
