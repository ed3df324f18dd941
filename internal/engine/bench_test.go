package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/testbedos/testbedos/internal/actlog"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// BenchmarkNetns brings N netns guests up and down through the whole engine
// (state file, stages, worker pool, the netns driver, bridges and firewall)
// and, interleaved in the same iterations, the plain `ip -batch` scripts
// doing the same. It reports both and their ratio:
//
//	up-ms, ipbatch-up-ms, up-x-of-ipbatch
//	down-ms, ipbatch-down-ms, down-x-of-ipbatch
//
// The engine's down returns when the kernel has removed every veth; the ip
// batch returns before that, so its down is timed until the kernel is done
// too (the floor).
//
//	go test -run '^$' -bench Netns -benchtime 3x ./internal/engine/
func BenchmarkNetns(b *testing.B) {
	nettest.RequireRoot(b)
	for _, size := range []struct{ guests, switches int }{{200, 1}, {1000, 4}} {
		b.Run(fmt.Sprintf("guests=%d,switches=%d", size.guests, size.switches), func(b *testing.B) {
			benchNetns(b, size.guests, size.switches)
		})
	}
}

func benchNetns(b *testing.B, n, switches int) {
	ctx := context.Background()
	e, d, hostVeths := engineFor(b, n, switches)
	engUp := func() error { return e.Up(ctx, d, api.UpOptions{}, discard{}) }
	engDown := func() error { return e.Down(ctx, d, discard{}) }

	floor := benchbase.FloorOver(nettest.Prefix(b), n, switches)
	// Down promises the veths are gone: check, do not wait.
	check := func() {
		if left, err := links.WithPrefix(hostVeths); err != nil || len(left) > 0 {
			b.Fatalf("after down: links %v left (%v)", left, err)
		}
	}
	benchbase.Compare(b, benchbase.UpDown{Up: engUp, Down: engDown}, floor.Steps(ctx), check)
}

// engineFor writes a project of n guests spread round-robin over the given
// number of switches, generates its artefacts and returns an engine with
// the real netns driver, and the prefix of the host ends of its veths.
func engineFor(b *testing.B, n, switches int) (*engine.Engine, api.Deployment, string) {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(benchbase.Lab(n, switches)), 0o644); err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, 3)
	rand.Read(raw)
	d := api.Deployment{Name: "bench-" + hex.EncodeToString(raw), ProjectLocation: dir}
	e := engine.New(engine.Options{
		Drivers: guest.NewRegistry(netns.New(netns.Options{})),
		Network: hostnet.NewHost(nil),
	})
	must(b, e.GenerateArtefacts(context.Background(), d, discard{}))
	st, err := topology.ReadState(topology.StatePath(dir))
	must(b, err)
	b.Cleanup(func() {
		e.Down(context.Background(), d, discard{})
		nettest.RemoveAll(st.Prefix)
		nettest.RemoveAll("tbos." + d.Name + ".")
	})
	return e, d, st.Prefix + "v"
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

type discard struct{}

func (discard) Printf(string, ...any)        {}
func (discard) Writer(string) io.WriteCloser { return nopCloser{} }

type nopCloser struct{}

func (nopCloser) Write(p []byte) (int, error) { return len(p), nil }
func (nopCloser) Close() error                { return nil }

var _ actlog.Log = discard{}
