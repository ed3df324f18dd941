package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/testbedos/testbedos/internal/benchbase"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/testenv"
	"github.com/testbedos/testbedos/internal/topology"
)

// Worker pools as the engine's on a 2-core host: max(8, 4×CPUs) for up; the
// netns benchmark's 64 for down.
const (
	benchWorkers   = 8
	destroyWorkers = 64
)

// BenchmarkUpDown50 brings 50 docker guests up on one switch and down
// again, through the driver and, in the same run, with the docker command
// (docker run -d --network none, then ip link / ip netns for the veths:
// the host end on the bridge, the address and MAC inside). Both return
// when every container runs with its interface configured (up) and when
// every container and host-side veth is gone (down).
//
//	go test -run '^$' -bench UpDown50 -benchtime 3x ./internal/guest/docker/
func BenchmarkUpDown50(b *testing.B) {
	const n = 50
	cli := dockertest.Client(b)
	if _, err := exec.LookPath("docker"); err != nil {
		testenv.Skipf(b, "needs the docker command for the baseline: %v", err)
	}
	image := dockertest.Image(b, cli)
	prefix := nettest.Prefix(b)
	st := benchState(prefix, image, n)
	ctx := context.Background()
	br := st.Switches[0].Bridge
	if _, err := bridge.Ensure(ctx, br); err != nil {
		b.Fatal(err)
	}
	fw := bridge.NewFirewall(nil)
	b.Cleanup(func() {
		_ = fw.RemoveBridge(br)
		_ = bridge.Delete(ctx, br)
	})
	if err := fw.AllowBridge(br); err != nil {
		b.Fatal(err)
	}
	drv, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer drv.Close()
	dep := guest.Deployment{Name: st.Deployment, Files: guest.ProjectFiles{Project: "/nonexistent"}}
	log := &guesttest.Log{}
	names := make([]string, n)
	for i := range st.Guests {
		names[i] = st.Guests[i].Docker.Container
	}
	b.Cleanup(func() {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, names...)...).Run()
	})
	watcher := links.NewWatcher()
	hostVeths := func() []string {
		var out []string
		for _, g := range st.Guests {
			out = append(out, g.Interfaces[0].HostName)
		}
		return out
	}()
	var upD, downD, upC, downC time.Duration
	driver := func() {
		start := time.Now()
		if err := benchbase.ForEach(ctx, benchWorkers, n, func(ctx context.Context, i int) error {
			_, err := drv.Create(ctx, dep, &st.Guests[i], log)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		upD += time.Since(start)
		start = time.Now()
		if err := benchbase.ForEach(ctx, destroyWorkers, n, func(ctx context.Context, i int) error {
			return drv.Destroy(ctx, dep, &st.Guests[i], log)
		}); err != nil {
			b.Fatal(err)
		}
		downD += time.Since(start)
	}
	baseline := func() {
		start := time.Now()
		if err := benchbase.ForEach(ctx, benchWorkers, n, func(ctx context.Context, i int) error {
			return cliUp(ctx, &st.Guests[i], image, prefix)
		}); err != nil {
			b.Fatal(err)
		}
		upC += time.Since(start)
		start = time.Now()
		if out, err := exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, names...)...).CombinedOutput(); err != nil {
			b.Fatalf("docker rm: %v: %s", err, out)
		}
		// The veths go with the containers' namespaces, in the
		// background: down is over when they are gone.
		if err := watcher.WaitGone(ctx, hostVeths...); err != nil {
			b.Fatal(err)
		}
		downC += time.Since(start)
		for i := range n { // the ip netns names of the baseline
			_ = os.Remove(filepath.Join(nettest.RunDir, cliNetns(prefix, i)))
		}
	}
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first, so neither always meets a daemon
		// still busy with the other's leftovers.
		if i%2 == 0 {
			driver()
			baseline()
		} else {
			baseline()
			driver()
		}
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(upD), "up-driver-s")
	b.ReportMetric(per(downD), "down-driver-s")
	b.ReportMetric(per(upC), "up-cli-s")
	b.ReportMetric(per(downC), "down-cli-s")
	b.ReportMetric(per(upD)/per(upC), "up-x-of-cli")
	b.ReportMetric(per(downD)/per(downC), "down-x-of-cli")
}

// cliUp is the baseline for one guest: the docker command and iproute2.
func cliUp(ctx context.Context, g *topology.Guest, image, prefix string) error {
	ifc := g.Interfaces[0]
	i, _ := strconv.Atoi(strings.TrimPrefix(g.Name, "g"))
	ns := cliNetns(prefix, i)
	script := fmt.Sprintf(`set -e
docker run -d -q --network none --name %[1]s %[2]s sleep infinity >/dev/null
pid=$(docker inspect -f '{{.State.Pid}}' %[1]s)
mkdir -p /run/netns
ln -sf /proc/$pid/ns/net /run/netns/%[3]s
ip link add %[4]s type veth peer name eth0 netns %[3]s
ip link set %[4]s master %[5]s up
ip -n %[3]s link set eth0 address %[6]s
ip -n %[3]s addr add %[7]s dev eth0
ip -n %[3]s link set eth0 up
`, g.Docker.Container, image, ns, ifc.HostName, ifc.Bridge, ifc.MAC, ifc.Address)
	if out, err := exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", g.Name, err, out)
	}
	return nil
}

// cliNetns is the ip netns name the baseline gives guest i's container.
func cliNetns(prefix string, i int) string { return fmt.Sprintf("%sn%d", prefix, i) }

// benchState is n docker guests g0… on one switch, named as a deployment
// would have them.
func benchState(prefix, image string, n int) *topology.State {
	dep := "bench-" + prefix
	st := &topology.State{
		Deployment: dep, Prefix: topology.Prefix(dep),
		Switches: []topology.Switch{{Name: "lan", Subnet: "10.124.0.0/16", Bridge: prefix + "br"}},
	}
	for i := range n {
		name := fmt.Sprintf("g%d", i)
		st.Guests = append(st.Guests, topology.Guest{
			Name: name, Kind: topology.KindDocker,
			Interfaces: []topology.Interface{{
				Switch: "lan", Bridge: prefix + "br", Name: "eth0",
				HostName: fmt.Sprintf("%sh%d", prefix, i),
				Address:  fmt.Sprintf("10.124.%d.%d/16", (i+1)>>8, (i+1)&0xff),
				MAC:      fmt.Sprintf("02:7c:00:00:%02x:%02x", (i>>8)&0xff, i&0xff),
			}},
			Docker: &topology.DockerSpec{
				Container: topology.ContainerName(dep, name), Image: image,
				Command: []string{"sleep", "infinity"},
			},
		})
	}
	return st
}
