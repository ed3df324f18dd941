package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/testbedos/testbedos/internal/guest"
	"github.com/testbedos/testbedos/internal/guest/docker/dockertest"
	"github.com/testbedos/testbedos/internal/guest/guesttest"
	"github.com/testbedos/testbedos/internal/guest/netns"
	"github.com/testbedos/testbedos/internal/net/bridge"
	"github.com/testbedos/testbedos/internal/net/links"
	"github.com/testbedos/testbedos/internal/net/nettest"
	"github.com/testbedos/testbedos/internal/topology"
)

// lab is a deployment generated from a YAML, with its bridges up, and the
// docker and netns drivers to bring its guests up.
type lab struct {
	t     *testing.T
	cli   *client.Client
	image string
	drv   *Driver
	nsd   *netns.Driver
	st    *topology.State
	dep   guest.Deployment
	log   *guesttest.Log
}

// newLab is newLabImage with the plain test image.
func newLab(t *testing.T, yaml string, files map[string]string) *lab {
	t.Helper()
	cli := dockertest.Client(t)
	return newLabImage(t, cli, dockertest.Image(t, cli), yaml, files)
}

// newLabImage writes yaml (IMAGE replaced by the test image) and files into a
// fresh project, generates its state under a unique deployment name and
// makes its bridges. Cleanup destroys every guest, removes the bridges and
// any container left with the deployment's names.
func newLabImage(t *testing.T, cli *client.Client, image, yaml string, files map[string]string) *lab {
	t.Helper()
	l := &lab{t: t, cli: cli, image: image, log: &guesttest.Log{T: t}, nsd: netns.New(netns.Options{})}
	drv, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	l.drv = drv
	project := t.TempDir()
	for name, body := range files {
		p := filepath.Join(project, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	yaml = strings.ReplaceAll(yaml, "IMAGE", l.image)
	if err := os.WriteFile(filepath.Join(project, topology.DefaultFile), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	st, err := topology.Generate(topology.Options{Deployment: "dk" + hex.EncodeToString(b), ProjectDir: project})
	if err != nil {
		t.Fatal(err)
	}
	l.st, l.dep = st, guest.LocalDeployment(st)
	t.Cleanup(func() { nettest.RemoveAll(st.Prefix) })
	ctx := context.Background()
	fw := bridge.NewFirewall(nil)
	for _, sw := range st.Switches {
		if _, err := bridge.Ensure(ctx, sw.Bridge); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := fw.RemoveBridge(sw.Bridge); err != nil {
				t.Error(err)
			}
			if err := bridge.Delete(ctx, sw.Bridge); err != nil {
				t.Error(err)
			}
		})
		// dockerd sets iptables FORWARD to DROP: the bridge needs its
		// exception, as the engine gives it.
		if err := fw.AllowBridge(sw.Bridge); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(l.down)
	return l
}

func (l *lab) driver(g *topology.Guest) guest.Driver {
	if g.Kind == topology.KindDocker {
		return l.drv
	}
	return l.nsd
}

func (l *lab) guest(name string) *topology.Guest {
	for i := range l.st.Guests {
		if l.st.Guests[i].Name == name {
			return &l.st.Guests[i]
		}
	}
	l.t.Fatalf("no guest %s", name)
	return nil
}

// up creates every guest and runs the setup scripts, failing the test on
// the first error.
func (l *lab) up() {
	l.t.Helper()
	ctx := context.Background()
	for i := range l.st.Guests {
		g := &l.st.Guests[i]
		if _, err := l.driver(g).Create(ctx, l.dep, g, l.log); err != nil {
			l.t.Fatal(err)
		}
	}
	for i := range l.st.Guests {
		g := &l.st.Guests[i]
		if g.SetupScript != "" {
			if err := l.driver(g).RunScript(ctx, l.dep, g, g.SetupScript, l.log); err != nil {
				l.t.Fatal(err)
			}
		}
	}
}

// down destroys every guest and removes, as a last resort, containers of
// the deployment's names.
func (l *lab) down() {
	ctx := context.Background()
	for i := range l.st.Guests {
		g := &l.st.Guests[i]
		if err := l.driver(g).Destroy(ctx, l.dep, g, l.log); err != nil {
			l.t.Error(err)
		}
		if g.Docker != nil {
			_, _ = l.cli.ContainerRemove(ctx, g.Docker.Container, client.ContainerRemoveOptions{Force: true})
		}
	}
}

// exec runs argv in guest name and returns its output, failing on a
// non-zero exit.
func (l *lab) exec(name string, argv ...string) string {
	l.t.Helper()
	var out bytes.Buffer
	code, err := l.drv.Exec(context.Background(), l.dep, l.guest(name), guest.Command{Argv: argv, Stdout: &out, Stderr: &out})
	if err != nil || code != 0 {
		l.t.Fatalf("exec %v in %s: code %d, %v: %s", argv, name, code, err, out.String())
	}
	return out.String()
}

// assertGone checks that no container and no host-side veth of the
// deployment's guests is left.
func (l *lab) assertGone() {
	l.t.Helper()
	for _, g := range l.st.Guests {
		if g.Docker != nil {
			_, err := l.cli.ContainerInspect(context.Background(), g.Docker.Container, client.ContainerInspectOptions{})
			if !cerrdefs.IsNotFound(err) {
				l.t.Errorf("container %s still there (inspect: %v)", g.Docker.Container, err)
			}
		}
		for _, ifc := range g.Interfaces {
			if idx, err := links.VethIndex(ifc.HostName); err != nil || idx != 0 {
				l.t.Errorf("veth %s of %s still there (%v)", ifc.HostName, g.Name, err)
			}
		}
	}
}

const pingLab = `
machines:
  - name: c1
    network: [{switch: sw0, ip: 10.77.0.10, mac: "02:77:00:00:00:10", gateway: 10.77.0.1}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
      environment: {MODE: test, FROM: yaml}
      env_file: c1.env
      volumes: [{source: data, target: /data}, {source: data, target: /ro, read_only: true}]
      setup_script: c1-setup.sh
  - name: c2
    network: [{switch: sw0, ip: 10.77.0.30}]
    docker:
      image: IMAGE
      command: [sleep, infinity]
      user: "65534"
    scaling: {count: 2}
  - name: n1
    network: [{switch: sw0, ip: 10.77.0.20}]
    netns: {}
network:
  switches:
    sw0: {subnet: 10.77.0.0/24}
`

func TestDockerAndNetnsGuests(t *testing.T) {
	l := newLab(t, pingLab, map[string]string{
		"c1.env":       "# comment\nFROM=file\nONLY_FILE=yes\n\n",
		"data/hello":   "hello from the project\n",
		"c1-setup.sh":  "#!/bin/sh\necho \"setup in $TESTBEDOS_GUEST of $TESTBEDOS_DEPLOYMENT: $(ip -4 addr show eth0 | grep -o 'inet [0-9./]*')\"\necho to-stderr >&2\n",
		"unused/empty": "",
	})
	l.up()
	ctx := context.Background()

	// Both ways between the container and the namespace on one switch.
	n1 := l.guest("n1")
	if err := nettestPing(n1.Netns.Namespace, "10.77.0.10"); err != nil {
		t.Errorf("netns n1 → docker c1: %v", err)
	}
	l.exec("c1", "ping", "-c", "1", "-W", "3", "10.77.0.20")
	// Scaled clones got addresses of their own.
	l.exec("c1", "ping", "-c", "1", "-W", "3", "10.77.0.31")

	// The setup script's output, both streams, is in the log.
	for _, want := range []string{"[c1] setup in c1 of " + l.st.Deployment + ": inet 10.77.0.10/24", "[c1] to-stderr"} {
		if !strings.Contains(l.log.Text(), want) {
			t.Errorf("log lacks %q:\n%s", want, l.log.Text())
		}
	}
	// Interface settings as the state says, as for a netns guest.
	if out := l.exec("c1", "cat", "/sys/class/net/eth0/address"); strings.TrimSpace(out) != "02:77:00:00:00:10" {
		t.Errorf("c1 eth0 MAC = %q", out)
	}
	if out := l.exec("c1", "ip", "route"); !strings.Contains(out, "default via 10.77.0.1 dev eth0") {
		t.Errorf("c1 routes:\n%s", out)
	}
	// Environment (YAML over env_file), volumes, user.
	if out := l.exec("c1", "sh", "-c", "echo $MODE $FROM $ONLY_FILE"); strings.TrimSpace(out) != "test yaml yes" {
		t.Errorf("c1 environment = %q", out)
	}
	if out := l.exec("c1", "cat", "/data/hello"); out != "hello from the project\n" {
		t.Errorf("c1 /data/hello = %q", out)
	}
	var errOut bytes.Buffer
	if code, err := l.drv.Exec(ctx, l.dep, l.guest("c1"), guest.Command{Argv: []string{"touch", "/ro/x"}, Stderr: &errOut}); err != nil || code == 0 {
		t.Errorf("touch on the read-only volume: code %d, %v", code, err)
	}
	if out := l.exec("c2-1", "id", "-u"); strings.TrimSpace(out) != "65534" {
		t.Errorf("c2-1 user = %q", out)
	}
	if out := l.exec("c1", "hostname"); strings.TrimSpace(out) != "c1" {
		t.Errorf("c1 hostname = %q", out)
	}
	// Stdin and exit codes.
	var out bytes.Buffer
	code, err := l.drv.Exec(ctx, l.dep, l.guest("c1"), guest.Command{Argv: []string{"sh", "-c", "read x; echo got $x; exit 3"}, Stdin: strings.NewReader("it\n"), Stdout: &out})
	if err != nil || code != 3 || out.String() != "got it\n" {
		t.Errorf("exec with stdin: code %d, %v, %q", code, err, out.String())
	}

	// Resource use as dockerd counts it: the exec'd busy loop ran in the
	// container's cgroup.
	l.exec("c1", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
	if st, err := l.drv.Stats(ctx, l.dep, l.guest("c1")); err != nil || st.CPUSeconds <= 0 || st.MemoryBytes == 0 {
		t.Errorf("Stats(c1) = %+v, %v; want CPU and memory above 0", st, err)
	}
	if p, err := l.drv.NetnsPath(ctx, l.guest("c1")); err != nil || !strings.HasPrefix(p, "/proc/") {
		t.Errorf("NetnsPath(c1) = %q, %v", p, err)
	}

	// Up again is a no-op: every guest is there.
	c1 := l.guest("c1")
	if ok, err := l.drv.Exists(ctx, l.dep, c1); err != nil || !ok {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if created, err := l.drv.Create(ctx, l.dep, c1, l.log); err != nil || created {
		t.Errorf("second Create = %v, %v; want false, nil", created, err)
	}

	// Down leaves nothing, and down again is fine.
	l.down()
	l.assertGone()
	l.down()
}

func TestConsole(t *testing.T) {
	l := newLab(t, `
machines:
  - name: c
    network: [{switch: sw0, ip: 10.78.0.10}]
    docker: {image: IMAGE, command: [sleep, infinity]}
network:
  switches:
    sw0: {subnet: 10.78.0.0/24}
`, nil)
	l.up()
	term, err := l.drv.Console(context.Background(), l.dep, l.guest("c"))
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	if err := term.Resize(100, 40); err != nil {
		t.Errorf("Resize: %v", err)
	}
	if _, err := io.WriteString(term, "stty size; echo sum=$((40+2))\n"); err != nil {
		t.Fatal(err)
	}
	screen := readUntil(t, term, "sum=42")
	if !strings.Contains(screen, "40 100") {
		t.Errorf("stty size after Resize(100, 40) not in:\n%s", screen)
	}
}

// readUntil reads r until want appears, or fails after a few seconds.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	var got bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			got.Write(buf[:n])
			if strings.Contains(got.String(), want) || err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q on the console", want)
	}
	return got.String()
}

func TestUnknownImage(t *testing.T) {
	l := newLab(t, `
machines:
  - name: c
    network: [{switch: sw0, ip: 10.79.0.10}]
    docker: {image: "busybox:nope", command: [sleep, infinity]}
network:
  switches:
    sw0: {subnet: 10.79.0.0/24}
`, nil)
	_, err := l.drv.Create(context.Background(), l.dep, l.guest("c"), l.log)
	want := "image busybox:nope not found on this host's dockerd; build or load it, or set pull: true"
	if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Create = %v, want %q", err, want)
	}
	l.assertGone()
}

func TestCommandThatExits(t *testing.T) {
	l := newLab(t, `
machines:
  - name: c
    network: [{switch: sw0, ip: 10.80.0.10}]
    docker: {image: IMAGE, command: ["true"]}
network:
  switches:
    sw0: {subnet: 10.80.0.0/24}
`, nil)
	ctx := context.Background()
	_, err := l.drv.Create(ctx, l.dep, l.guest("c"), l.log)
	if err == nil {
		// The command may exit only after Create's last look at it (its
		// interfaces went in first): then the guest must not count as
		// there, and down removes it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ok, xerr := l.drv.Exists(ctx, l.dep, l.guest("c"))
			if xerr != nil {
				t.Fatal(xerr)
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a container whose command exited still counts as there")
			}
			time.Sleep(50 * time.Millisecond)
		}
		l.down()
	} else if !strings.Contains(err.Error(), "must keep running") {
		t.Fatalf("Create of a container whose command exits = %v", err)
	}
	l.assertGone()
}

func TestRemnantsAreReplaced(t *testing.T) {
	l := newLab(t, `
machines:
  - name: c
    network: [{switch: sw0, ip: 10.81.0.10}]
    docker: {image: IMAGE, command: [sleep, infinity], entrypoint: []}
network:
  switches:
    sw0: {subnet: 10.81.0.0/24}
`, nil)
	l.up()
	ctx := context.Background()
	c := l.guest("c")
	// A container stopped behind our back: not complete any more.
	if _, err := l.cli.ContainerKill(ctx, c.Docker.Container, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, l.cli, c.Docker.Container)
	if ok, err := l.drv.Exists(ctx, l.dep, c); err != nil || ok {
		t.Fatalf("Exists after kill = %v, %v", ok, err)
	}
	created, err := l.drv.Create(ctx, l.dep, c, l.log)
	if err != nil || !created {
		t.Fatalf("Create over remnants = %v, %v", created, err)
	}
	if !strings.Contains(l.log.Text(), "left incomplete by an earlier run") {
		t.Errorf("log does not say remnants were removed:\n%s", l.log.Text())
	}
	l.exec("c", "ip", "link", "show", "eth0")
}

func waitStopped(t *testing.T, cli *client.Client, name string) {
	t.Helper()
	for range 100 {
		res, err := cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Container.State != nil && !res.Container.State.Running {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s still running", name)
}

func nettestPing(namespace, ip string) error {
	return nettest.Ping(namespace, net.ParseIP(ip), 3*time.Second)
}

func TestEntrypoint(t *testing.T) {
	cli := dockertest.Client(t)
	image := dockertest.Image(t, cli, `ENTRYPOINT ["/bin/false"]`)
	l := newLabImage(t, cli, image, `
machines:
  - name: cleared
    network: [{switch: sw0, ip: 10.82.0.10}]
    docker: {image: IMAGE, command: [sleep, infinity], entrypoint: []}
  - name: replaced
    network: [{switch: sw0, ip: 10.82.0.11}]
    docker: {image: IMAGE, command: [infinity], entrypoint: [/bin/sleep]}
network:
  switches:
    sw0: {subnet: 10.82.0.0/24}
`, nil)
	l.up()
	l.exec("cleared", "ping", "-c", "1", "-W", "3", "10.82.0.11")
}
