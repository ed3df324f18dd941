package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testbedos/testbedos/internal/agent"
	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/engine"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/net/hostnet"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// BenchmarkUpDown: up then down of 50 netns guests on a client host, every
// call through the agent API over loopback HTTP, next to the same on the
// main.
func BenchmarkUpDown(b *testing.B) {
	for _, host := range []string{"host2", "main"} {
		b.Run("on="+host, func(b *testing.B) { benchUpDown(b, host) })
	}
}

func benchUpDown(b *testing.B, host string) {
	nettest.RequireRoot(b)
	const n = 50
	ctx := context.Background()
	raw := make([]byte, 3)
	_, _ = rand.Read(raw)
	name := "ab" + hex.EncodeToString(raw)
	b.Cleanup(func() { nettest.RemoveAll("tbos." + name + ".") })
	drivers := guest.NewRegistry(netns.New(netns.Options{}))
	srv := httptest.NewServer(agent.Handler(agent.Options{Name: "host2", DataDir: b.TempDir(), Drivers: drivers, Network: hostnet.NewHost(nil)}))
	b.Cleanup(srv.Close)
	remote, err := agent.NewRemoteHost(agent.RemoteOptions{Name: "host2", BaseURL: srv.URL, Client: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	e := engine.New(engine.Options{Hosts: cluster{main: &engine.LocalHost{HostName: "main", Net: hostnet.NewHost(nil), Drivers: drivers}, remote: remote}})
	var y strings.Builder
	y.WriteString("machines:\n")
	for i := range n {
		fmt.Fprintf(&y, "  - name: g%d\n    host: %s\n    network: [{switch: sw0, ip: 10.78.0.%d}]\n", i, host, i+1)
	}
	y.WriteString("network:\n  switches:\n    sw0: {subnet: 10.78.0.0/24}\n")
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kvm-compose.yaml"), []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	d := api.Deployment{Name: name, ProjectLocation: dir}
	if err := e.GenerateArtefacts(ctx, d, &guesttest.Log{}); err != nil {
		b.Fatal(err)
	}
	st, err := topology.ReadState(topology.StatePath(dir))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = e.Down(context.Background(), d, &guesttest.Log{})
		nettest.RemoveAll(st.Prefix)
	})
	b.ResetTimer()
	for range b.N {
		if err := e.Up(ctx, d, api.UpOptions{}, &guesttest.Log{}); err != nil {
			b.Fatal(err)
		}
		if err := e.Down(ctx, d, &guesttest.Log{}); err != nil {
			b.Fatal(err)
		}
	}
}
