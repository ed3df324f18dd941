package e2e

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/api"
	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/docker"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

const dockerLab = `machines:
  - name: box
    network: [{switch: sw0, ip: 10.0.0.10}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
      environment: {GREETING: hello}
      setup_script: box-setup.sh
  - name: ns
    network: [{switch: sw0, ip: 10.0.0.20}]
network:
  switches:
    sw0: {subnet: 10.0.0.0/24}
`

// TestDockerGuestUpPingDown: a container and a namespace on one switch,
// through the server: the container's setup script output is in the up
// log, the two ping each other both ways, down leaves no container and no
// link.
func TestDockerGuestUpPingDown(t *testing.T) {
	nettest.RequireRoot(t)
	s := startServer(t)
	lab := containerLab(t, s, "dk", dockerLab, map[string]string{
		"box-setup.sh": "#!/bin/sh\necho \"$GREETING from $TESTBEDOS_GUEST\"; ip -o -4 addr show dev eth0\n",
	}, "box")
	name, st, cli := lab.name, lab.st, lab.cli
	log := strings.Join(mustSucceed(t, s, name, cmd(api.CmdUp)), "\n")
	for _, want := range []string{"[box] hello from box", "10.0.0.10/24"} {
		if !strings.Contains(log, want) {
			t.Errorf("up log lacks %q:\n%s", want, log)
		}
	}

	var box, ns *topology.Guest
	for i := range st.Guests {
		switch st.Guests[i].Name {
		case "box":
			box = &st.Guests[i]
		case "ns":
			ns = &st.Guests[i]
		}
	}
	if err := nettest.Ping(ns.Netns.Namespace, net.ParseIP("10.0.0.10"), 5*time.Second); err != nil {
		t.Errorf("ns -> box: %v", err)
	}
	drv, err := docker.New(docker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	var out bytes.Buffer
	code, err := drv.Exec(context.Background(), guest.LocalDeployment(&st), box, guest.Command{
		Argv: []string{"ping", "-c", "1", "-W", "5", "10.0.0.20"}, Stdout: &out, Stderr: &out,
	})
	if err != nil || code != 0 {
		t.Errorf("box -> ns: code %d, %v:\n%s", code, err, out.String())
	}

	// An impairment on the container's link (netem, or the userspace
	// fallback in the container's namespace) shows in the round trip.
	if _, err := s.c.SetImpairment(context.Background(), name, "box", "eth0", api.Impairment{Up: true, DelayMS: 80}); err != nil {
		t.Fatal(err)
	}
	p, err := nettest.NewPinger(ns.Netns.Namespace, net.ParseIP("10.0.0.10"))
	if err != nil {
		t.Fatal(err)
	}
	// The best of three: a loaded machine only makes some later.
	best, err := time.Duration(0), error(nil)
	for i := range 3 {
		rtt, perr := p.Echo(5 * time.Second)
		if perr != nil {
			err = perr
			break
		}
		if i == 0 || rtt < best {
			best = rtt
		}
	}
	if err != nil || best < 80*time.Millisecond || best > 200*time.Millisecond {
		t.Errorf("ns -> box with 80 ms on box: %v, %v", best, err)
	}
	p.Close()

	mustSucceed(t, s, name, cmd(api.CmdDown))
	assertNothingLeft(t, st)
	if _, err := cli.ContainerInspect(context.Background(), box.Docker.Container, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("container %s after down: %v", box.Docker.Container, err)
	}
	mustSucceed(t, s, name, cmd(api.CmdDown))
}

// TestDockerUnknownImageFailsUp: up fails naming the image, and reverts.
func TestDockerUnknownImageFailsUp(t *testing.T) {
	nettest.RequireRoot(t)
	cli := dockertest.Client(t)
	s := startServer(t)
	dir := project(t, strings.ReplaceAll(dockerLab, "IMAGE", "busybox:nope"), map[string]string{"box-setup.sh": "#!/bin/sh\n"})
	name := deployment(t, s, "dkimg", dir)
	t.Cleanup(func() { removeContainers(cli, name, "box") })
	mustSucceed(t, s, name, cmd(api.CmdGenerateArtefacts))
	st := state(t, s, name)
	o, lines, _ := act(t, s, name, cmd(api.CmdUp))
	log := strings.Join(lines, "\n")
	if o.ErrorCode == 0 || !strings.Contains(log, "image busybox:nope not found on this host's dockerd") {
		t.Fatalf("up with an unknown image: code %d, log:\n%s", o.ErrorCode, log)
	}
	assertNothingLeft(t, st)
}

// removeContainers is the last-resort clean-up of a failed test.
func removeContainers(cli *client.Client, deployment string, guests ...string) {
	for _, g := range guests {
		_, _ = cli.ContainerRemove(context.Background(), topology.ContainerName(deployment, g), client.ContainerRemoveOptions{Force: true})
	}
}

// generatedLab is a deployment made by generated (cli: by containerLab).
type generatedLab struct {
	name, dir string
	st        topology.State
	cli       *client.Client
}

// containerLab is generated for labs with containers: every IMAGE in yaml
// is the test image, and the containers are removed when the test ends.
// The caller has checked for root.
func containerLab(t *testing.T, s *server, prefix, yaml string, files map[string]string, containers ...string) generatedLab {
	t.Helper()
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli)
	lab := generated(t, s, prefix, strings.ReplaceAll(yaml, "IMAGE", image), files)
	t.Cleanup(func() { removeContainers(cli, lab.name, containers...) })
	lab.cli = cli
	return lab
}
